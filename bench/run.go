// Package bench is the end-to-end benchmark behind `make bench`: in
// throwaway network namespaces it runs sesame and knockd on the same
// workloads (knock-to-grant latency, a spoofed SYN flood with a legitimate
// client knocking through it, a bulk transfer from a granted client),
// reads each daemon's CPU time, RSS and socket drops, and renders one table
// with sesame/knockd ratios plus two plots.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// Options say what to measure and for how long.
type Options struct {
	Sesame   string        // sesame binary
	Knockd   string        // knockd binary; "" skips knockd
	Knocks   int           // latency knocks per address family
	Rates    []int         // flood rates in packets/s; 0: as fast as it goes
	FloodFor time.Duration // each flood run (≤ 30s)
	// KnockFloodFor is the run of spoofed knocks that complete the
	// sequence (sesame only; 0 skips it).
	KnockFloodFor time.Duration
	BulkBytes     int64     // the bulk transfer
	Log           io.Writer // progress; nil: discard
	// NATS is a nats-server binary for the fleet run (the local grant's
	// latency with fleet publishing on); "" skips it.
	NATS string
}

// Quick is a smoke run: a few knocks, a short low-rate flood, a small bulk
// transfer.
func Quick(sesame, knockd string) Options {
	return Options{Sesame: sesame, Knockd: knockd, Knocks: 5, Rates: []int{2000},
		FloodFor: 1500 * time.Millisecond, KnockFloodFor: 1500 * time.Millisecond, BulkBytes: 64 << 20}
}

// Full is what `make bench` runs.
func Full(sesame, knockd string) Options {
	return Options{Sesame: sesame, Knockd: knockd, Knocks: 200, Rates: []int{10_000, 100_000, 300_000, 0},
		FloodFor: 10 * time.Second, KnockFloodFor: 10 * time.Second, BulkBytes: 4 << 30}
}

// The topology: one server and one client joined by a veth pair. The
// flood comes from the client's side of the same link, so the legitimate
// knocks and the flood share the server's capture socket.
// Its addresses and interfaces are nstest's ClientLink, the e2e tests'.
var (
	server4 = nstest.ServerClient4
	client4 = nstest.Client4
	server6 = nstest.ServerClient6
	client6 = nstest.Client6
)

const (
	ifServer = nstest.IfServerToClient
	ifClient = nstest.IfPeer
	guarded  = 2222
)

var knockPorts = []uint16{7000, 8000, 9000}

// Result is everything measured for one daemon.
type Result struct {
	Daemon      string
	IdleRSSKiB  int64
	Latency4    []time.Duration
	Latency6    []time.Duration
	LatencyFail int
	// The forward path (sesame only): knock on the server, connect to a
	// backend it routes to, guarded by a door's forward targets.
	FwdLatency4    []time.Duration
	FwdLatency6    []time.Duration
	FwdLatencyFail int
	// Fleet mode (sesame only, with Options.NATS): the same door's local
	// knock-to-grant latency without a fleet block and with one that
	// publishes every open; how many opens there were and how many
	// records the server acknowledged.
	NoFleetLatency4, NoFleetLatency6 []time.Duration
	FleetLatency4, FleetLatency6     []time.Duration
	NoFleetInternal, FleetInternal   []time.Duration // read → nft applied
	FleetLatencyFail                 int
	FleetOpens                       int
	FleetPublished                   uint64
	Internal                         []time.Duration // sesame: read → nftables applied, per grant
	Floods                           []FloodRun
	KnockFlood                       *KnockFloodRun // sesame only
	Bulk                             BulkRun
}

// FloodRun is one flood rate.
type FloodRun struct {
	Target    int     // asked-for packets/s; 0: unpaced
	Offered   float64 // packets/s the sender wrote
	Delivered float64 // packets/s the server's interface received
	Legit, OK int     // legitimate knocks tried and granted
	// Opens counts the opens the daemon logged: a legit knock it opened
	// whose connect still failed within a second was lost on the path
	// (the flooded link, neighbour discovery), not by the daemon.
	Opens        int
	LegitLatency []time.Duration
	CPU          float64 // daemon CPU, fraction of one core
	PeakRSSKiB   int64
	Packets      int64 // capture socket: packets that passed its filter
	Drops        int64 // of those, dropped by the kernel
	DropsKnown   bool
}

// BulkRun is the bulk transfer from a granted client.
type BulkRun struct {
	Bytes int64
	Took  time.Duration
	CPU   time.Duration // daemon CPU time during the transfer
}

// Run measures every daemon in opts, each in its own fresh topology.
func Run(opts Options) ([]Result, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	kinds := []daemonKind{sesameKind{Bin: opts.Sesame}}
	if opts.Knockd != "" {
		kinds = append(kinds, knockdKind{Bin: opts.Knockd})
	}
	var out []Result
	for _, k := range kinds {
		r, err := runOne(opts, k)
		if err != nil {
			return out, fmt.Errorf("%s: %w", k.Name(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

type topo struct {
	srv, cli       *nstest.NS
	srvMAC, cliMAC net.HardwareAddr
}

func newTopo() (*topo, error) {
	srv, err := nstest.Create("bsrv")
	if err != nil {
		return nil, err
	}
	cli, err := nstest.Create("bcli")
	if err != nil {
		_ = srv.Close()
		return nil, err
	}
	t := &topo{srv: srv, cli: cli}
	steps := []struct {
		ns   *nstest.NS
		args []string
	}{
		// No duplicate address detection: every address, link-local
		// included, is usable at once (knockd reads them at startup).
		{srv, []string{"sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"}},
		{cli, []string{"sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"}},
	}
	for _, s := range steps {
		if _, err := s.ns.Run(s.args[0], s.args[1:]...); err != nil {
			t.Delete()
			return nil, err
		}
	}
	if err := nstest.Join(srv, cli, nstest.ClientLink); err != nil {
		t.Delete()
		return nil, err
	}
	if t.srvMAC, err = mac(srv, ifServer); err == nil {
		t.cliMAC, err = mac(cli, ifClient)
	}
	if err != nil {
		t.Delete()
		return nil, err
	}
	return t, nil
}

func (t *topo) Delete() {
	_ = t.cli.Close()
	_ = t.srv.Close()
}

func mac(ns *nstest.NS, iface string) (net.HardwareAddr, error) {
	out, err := ns.Run("ip", "-j", "link", "show", "dev", iface)
	if err != nil {
		return nil, err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return nil, fmt.Errorf("parse ip -j link show %s: %v: %s", iface, err, out)
	}
	return net.ParseMAC(links[0].Address)
}

// rxPackets is the count of packets the interface received.
func rxPackets(ns *nstest.NS, iface string) int64 {
	out, err := ns.Run("ip", "-j", "-s", "link", "show", "dev", iface)
	if err != nil {
		return 0
	}
	var links []struct {
		Stats struct {
			RX struct {
				Packets int64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if json.Unmarshal([]byte(out), &links) != nil || len(links) != 1 {
		return 0
	}
	return links[0].Stats.RX.Packets
}

func runOne(opts Options, k daemonKind) (Result, error) {
	res := Result{Daemon: k.Name()}
	dir, err := os.MkdirTemp("", "sesame-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	t, err := newTopo()
	if err != nil {
		return res, err
	}
	defer t.Delete()
	s, err := listenSink(t.srv, guarded)
	if err != nil {
		return res, err
	}
	defer s.Close()
	logf := func(format string, a ...any) { fmt.Fprintf(opts.Log, k.Name()+": "+format+"\n", a...) }

	// Idle RSS and knock-to-grant latency. sesame logs at debug level
	// here, for its per-grant internal latency.
	lk := k
	if sk, ok := k.(sesameKind); ok {
		sk.debug = true
		lk = sk
	}
	p, err := lk.Start(t.srv, dir, ifServer, knockPorts, guarded)
	if err != nil {
		return res, err
	}
	time.Sleep(300 * time.Millisecond)
	if u, err := p.usage(); err == nil {
		res.IdleRSSKiB = u.RSSKiB
	}
	logf("latency: %d knocks per family", opts.Knocks)
	res.Latency4, res.Latency6, res.LatencyFail, err = latencyRun(t.cli, opts.Knocks, netip.Addr{}, netip.Addr{}, func() error { return k.FlushGrants(t.srv) })
	if err != nil {
		p.stop()
		return res, err
	}
	if sk, ok := lk.(sesameKind); ok {
		if in := sk.Internal(p); len(in) > 2 {
			res.Internal = in[2:] // not the two warm-up knocks
		}
	}
	if res.LatencyFail > 0 {
		logf("%d knocks not granted; the daemon's last lines:\n%s", res.LatencyFail, p.logTail())
	}
	p.stop()
	if _, ok := k.(sesameKind); ok {
		if err := forwardLatency(opts, &res, logf); err != nil {
			return res, fmt.Errorf("forward latency: %w", err)
		}
		if opts.NATS != "" {
			if err := fleetLatency(opts, &res, logf); err != nil {
				return res, fmt.Errorf("fleet latency: %w", err)
			}
		}
	}

	for _, rate := range opts.Rates {
		logf("flood at %s for %s", rateName(rate), opts.FloodFor)
		fr, err := floodRun(opts, k, t, dir, rate)
		if err != nil {
			return res, err
		}
		logf("  offered %.0f pps, delivered %.0f pps, legit %d/%d (daemon opened %d), cpu %.1f%%, drops %d", fr.Offered, fr.Delivered, fr.OK, fr.Legit, fr.Opens, 100*fr.CPU, fr.Drops)
		res.Floods = append(res.Floods, fr)
	}

	if _, ok := k.(sesameKind); ok && opts.KnockFloodFor > 0 {
		logf("spoofed knocks completing the sequence, as fast as they go, for %s", opts.KnockFloodFor)
		kr, err := knockFloodRun(opts, opts.Sesame, t, dir)
		if err != nil {
			return res, err
		}
		logf("  %.0f pps, %.0f sources/s; legit %d/%d; totp %v spa %v manual %v; spoofed pending %d, confirmed %d; cpu %.1f%%, drops %d",
			kr.Offered, kr.Sources, kr.OK, kr.Legit, kr.Others["totp"], kr.Others["spa"], kr.Others["manual"], kr.Pending, kr.Confirmed, 100*kr.CPU, kr.Drops)
		res.KnockFlood = kr
	}

	logf("bulk: %d MiB", opts.BulkBytes>>20)
	res.Bulk, err = bulkRun(opts, k, t, dir)
	return res, err
}

func rateName(rate int) string {
	if rate == 0 {
		return "max"
	}
	if rate >= 1000 && rate%1000 == 0 {
		return fmt.Sprintf("%dk", rate/1000)
	}
	return fmt.Sprint(rate)
}

// floodRun starts a fresh daemon, floods it for opts.FloodFor while the
// legitimate client knocks every 200ms (100ms between its knock packets),
// then stops it and reads its counters.
func floodRun(opts Options, k daemonKind, t *topo, dir string, rate int) (FloodRun, error) {
	fr := FloodRun{Target: rate}
	p, err := k.Start(t.srv, dir, ifServer, knockPorts, guarded)
	if err != nil {
		return fr, err
	}
	defer p.stop()
	u0, err := p.usage()
	if err != nil {
		return fr, err
	}
	rx0 := rxPackets(t.srv, ifServer)
	start := time.Now()
	stop := make(chan struct{})
	type floodOut struct {
		r   floodResult
		err error
	}
	fc := make(chan floodOut, 1)
	go func() {
		r, err := flood(t.cli, floodSpec{Iface: ifClient, SrcMAC: t.cliMAC, DstMAC: t.srvMAC,
			Dst4: server4, Dst6: server6, Ports: knockPorts, PPS: rate, For: opts.FloodFor}, stop)
		fc <- floodOut{r, err}
	}()
	for i := 0; time.Since(start) < opts.FloodFor-300*time.Millisecond; i++ {
		dst := server4
		if i%2 == 1 {
			dst = server6
		}
		lat, ok, err := knockOnce(t.cli, knockSpec{Dst: dst, Ports: knockPorts, Gap: 100 * time.Millisecond,
			Guarded: guarded, Poll: 200 * time.Microsecond, Within: time.Second})
		if err != nil {
			close(stop)
			<-fc
			return fr, err
		}
		fr.Legit++
		if ok {
			fr.OK++
			fr.LegitLatency = append(fr.LegitLatency, lat)
		}
		if err := k.FlushGrants(t.srv); err != nil {
			close(stop)
			<-fc
			return fr, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	fo := <-fc
	if fo.err != nil {
		return fr, fo.err
	}
	elapsed := time.Since(start)
	u1, err := p.usage()
	if err != nil {
		return fr, err
	}
	rx1 := rxPackets(t.srv, ifServer)
	fr.Offered = fo.r.PPS()
	fr.Delivered = float64(rx1-rx0) / elapsed.Seconds()
	fr.CPU = (u1.CPU - u0.CPU).Seconds() / elapsed.Seconds()
	fr.PeakRSSKiB = u1.PeakRSSKiB
	p.stop()
	fr.Packets, fr.Drops, fr.DropsKnown = k.Drops(p)
	fr.Opens = k.Opens(p)
	return fr, nil
}

// bulkRun knocks once, then sends opts.BulkBytes to the guarded port and
// measures the daemon's CPU time meanwhile.
func bulkRun(opts Options, k daemonKind, t *topo, dir string) (BulkRun, error) {
	b := BulkRun{Bytes: opts.BulkBytes}
	p, err := k.Start(t.srv, dir, ifServer, knockPorts, guarded)
	if err != nil {
		return b, err
	}
	defer p.stop()
	_, ok, err := knockOnce(t.cli, knockSpec{Dst: server4, Ports: knockPorts, Gap: 5 * time.Millisecond,
		Guarded: guarded, Poll: 200 * time.Microsecond, Within: 2 * time.Second})
	if err != nil {
		return b, err
	}
	if !ok {
		return b, fmt.Errorf("bulk: the knock was not granted:\n%s", strings.TrimSpace(p.out.String()))
	}
	u0, err := p.usage()
	if err != nil {
		return b, err
	}
	if b.Took, err = bulk(t.cli, server4, guarded, opts.BulkBytes); err != nil {
		return b, err
	}
	time.Sleep(100 * time.Millisecond) // let the daemon drain its socket
	u1, err := p.usage()
	if err != nil {
		return b, err
	}
	b.CPU = u1.CPU - u0.CPU
	return b, nil
}

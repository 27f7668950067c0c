package fleetsim

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
)

// The delaying proxy adds its delay in each direction and carries the
// bytes unchanged.
func TestProxyDelaysBothWays(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	const d = 30 * time.Millisecond
	p, err := NewProxy([]string{l.Addr().String()}, d)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 100<<10)
	_, _ = rand.Read(msg)
	start := time.Now()
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*d {
		t.Errorf("round trip %s through a proxy of %s each way", rtt, d)
	}
	if !bytes.Equal(got, msg) {
		t.Error("the proxy changed the bytes")
	}
}

func TestProcUsage(t *testing.T) {
	u, err := ProcUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSKiB <= 0 || u.PeakRSSKiB < u.RSSKiB {
		t.Errorf("usage %+v", u)
	}
	if _, err := ProcUsage(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// A member applies what its receiver accepts into its fake set, with the
// receiver's timeout, and refuses the rest.
func TestMemberAppliesWhatTheReceiverAccepts(t *testing.T) {
	const group = "g"
	origins, ms, err := phaseMembers(2, group)
	if err != nil {
		t.Fatal(err)
	}
	self := fleet.Self{Fleet: fleetName, Groups: []string{group},
		Doors: map[string]fleet.Door{doorName: {Open: ports, OpenFor: doorOpenFor}}, MaxSkew: maxSkew}
	tr := newTracker()
	m := newMember(origins[1], tr, fleet.NewReceiver(ms, self, seenCap, rate, burst))
	carrier := newMember(origins[0], tr, nil)
	now := time.Now()
	id, env, err := origins[0].Record(fleet.KindOpen, group, doorName, srcAddr(1), ports, 30*time.Second, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &grant{published: now, restart: true}
	tr.add(id, g)
	m.want, carrier.want = 1, 1
	m.deliver(natslink.Record{Group: group, From: origins[0].Member, ID: id, Data: env})
	carrier.deliver(natslink.Record{Group: group, From: origins[0].Member, ID: id, Data: env})
	carrier.deliver(natslink.Record{Group: group, From: origins[0].Member, ID: id, Data: env})
	// The same record again (a catch-up): refused as a replay.
	m.deliver(natslink.Record{Group: group, From: origins[0].Member, ID: id, Data: env})
	// Written under the other member's name: refused.
	id2, env2, _ := origins[0].Record(fleet.KindOpen, group, doorName, srcAddr(2), ports, 30*time.Second, now, nil)
	m.deliver(natslink.Record{Group: group, From: origins[1].Member, ID: id2, Data: env2})
	if n := g.applied.Load(); n != 1 {
		t.Fatalf("grant applied %d times, want 1", n)
	}
	// Delivered to both, once each (the carrier's second delivery is a
	// duplicate); both hold it, the carrier without applying anything.
	if n := g.delivered.Load(); n != 2 {
		t.Errorf("grant delivered %d times, want 2", n)
	}
	for _, x := range []*member{m, carrier} {
		if h, full := x.restartState(); h != 1 || full == 0 {
			t.Errorf("%s holds %d restart records (full at %d), want 1", x.name, h, full)
		}
	}
	if len(carrier.set) != 0 {
		t.Errorf("the carrier applied %v", carrier.set)
	}
	e, ok := m.set[g.idx]
	if !ok || len(m.set) != 1 {
		t.Fatalf("fake set %v", m.set)
	}
	if e.timeout <= 29*time.Second || e.timeout > 30*time.Second {
		t.Errorf("kernel timeout %s, want just under 30s", e.timeout)
	}
	c := &tr.counts
	if c.applied.Load() != 1 || c.violations.Load() != 0 {
		t.Errorf("applied %d, violations %d", c.applied.Load(), c.violations.Load())
	}
	if c.refused[fleet.ReasonReplayedID].Load() != 1 || c.refused[fleet.ReasonSignerNotOrigin].Load() != 1 {
		t.Errorf("refusals: replayed %d, signer-not-origin %d", c.refused[fleet.ReasonReplayedID].Load(), c.refused[fleet.ReasonSignerNotOrigin].Load())
	}
}

func TestWriteDocs(t *testing.T) {
	r := &Result{Start: time.Now(), Connect: map[string]time.Duration{"m100d0": time.Second}, Refused: map[string]int64{}}
	for _, m := range []int{100, 500, 1000} {
		last := []time.Duration{time.Duration(m) * 100 * time.Microsecond, 20 * time.Millisecond, 30 * time.Millisecond}
		r.Cells = append(r.Cells, Cell{Members: m, Checkers: 100, Rate: 10, Grants: 3, Complete: 3,
			Ack: []time.Duration{time.Millisecond}, Last: last, LastDelivery: last[1:]})
	}
	r.Restart = &RestartResult{Members: 500, Records: 1000, Converge: []time.Duration{time.Second}, Converged: 1}
	dir := t.TempDir()
	if err := WriteDocs(dir, Options{CellFor: time.Second, MaxGrants: 3}, r, "make fleetsim"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, DocFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 100 (all) | 10 | none | 3 (3) | 1.0 / 1.0 | 20.0 / 30.0 | 20.0 / 30.0 |", "| 500 (100) | 10 | none | 3 (3) | 1.0 / 1.0 | 30.0 / 50.0 | 20.0 / 30.0 |", "| 1 of 500 |", PlotPNG,
		"| last member p99 < 250 ms at 1,000 members, 10 grants/s | 100.0 ms (100 checking, 900 carrying; 3 of 3 grants complete) | met |",
		"| 1 of 500 members; the last after 1.00 s", "| missed |",
		"| no member holds a record past not_after + max_skew | 0 of 0 applied grants past it | missed |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("perf-fleet.md lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, PlotPNG)); err != nil || st.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
}

// natsServer returns the nats-server binary for the smoke run:
// $NATS_SERVER_BIN (make test sets it, as for e2e) or the repository's
// bin/nats-server (make bin/nats-server).
func natsServer(t testing.TB) string {
	for _, p := range []string{os.Getenv("NATS_SERVER_BIN"), "../../bin/nats-server"} {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	t.Skip("no nats-server binary: make bin/nats-server, or set NATS_SERVER_BIN")
	return ""
}

// A small run end to end: 5 members, direct and through the proxy, and
// the restart test; every grant reaches every member.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	o := Options{NATSServer: natsServer(t), Dir: t.TempDir(), Members: []int{5}, Rates: []float64{20},
		Delays: []time.Duration{0, 5 * time.Millisecond}, CellFor: 500 * time.Millisecond, MaxGrants: 10,
		OpenFor: 30 * time.Second, Settle: 10 * time.Second, RestartMembers: 5, RestartRecords: 20, OutageRecords: 2, ConvergeFor: 15 * time.Second}
	r, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 2 {
		t.Fatalf("%d cells", len(r.Cells))
	}
	for _, c := range r.Cells {
		if c.Grants != 10 || c.Complete != 10 || len(c.Last) != 10 {
			t.Errorf("cell %+v: not every grant reached every member", c)
		}
		if c.Delay > 0 && pct(c.Last, 50) < 2*c.Delay {
			t.Errorf("last-member p50 %s through a proxy of %s each way", pct(c.Last, 50), c.Delay)
		}
	}
	if r.Violations != 0 || r.Checked < 100 {
		t.Errorf("checked %d, violations %d", r.Checked, r.Violations)
	}
	if r.Restart == nil || r.Restart.Loaded != 5 {
		t.Errorf("restart %+v", r.Restart)
	}
}

// TestRestartOnly: with no member counts (fleetsim -matrix=false) only the
// restart test runs, and every member converges.
func TestRestartOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	o := Options{NATSServer: natsServer(t), Dir: t.TempDir(), Rates: []float64{10}, Delays: []time.Duration{0},
		FullCheck: true, Checkers: 2, RestartMembers: 5, RestartRecords: 20, OutageRecords: 2, ConvergeFor: 30 * time.Second}
	r, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 0 {
		t.Errorf("%d cells, want none", len(r.Cells))
	}
	if r.Restart == nil || r.Restart.Loaded != 5 || r.Restart.Converged != 5 {
		t.Errorf("restart %+v, want every member loaded and converged", r.Restart)
	}
}

// BenchmarkFleetSim is a small run for go test -bench: 20 members, 10
// grants a second for 2 s; the metrics are the last member's p50 and p99.
func BenchmarkFleetSim(b *testing.B) {
	bin := natsServer(b)
	for b.Loop() {
		r, err := Run(Options{NATSServer: bin, Dir: b.TempDir(), Members: []int{20}, Rates: []float64{10},
			Delays: []time.Duration{0}, CellFor: 2 * time.Second, MaxGrants: 20, OpenFor: 30 * time.Second, Settle: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		c := r.Cells[0]
		b.ReportMetric(float64(pct(c.Last, 50))/1e6, "last-p50-ms")
		b.ReportMetric(float64(pct(c.Last, 99))/1e6, "last-p99-ms")
		b.ReportMetric(float64(pct(c.Ack, 50))/1e6, "ack-p50-ms")
	}
}

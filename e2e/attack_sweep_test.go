package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// sweepConfig has one door of each shape a scan could walk before issue 11:
// three UDP steps, knockd's man-page "fin,!ack" flags, the default SYN
// door, and TCP and UDP mixed. No door's ports lie between another door's
// ports of the same protocol, so that each sweep below walked its door on
// e7b785e, whose filter passed UDP and non-SYN TCP only to knock ports.
// seq_timeout is the longest allowed: no sweep is saved by a timeout.
func sweepConfig(metrics netip.AddrPort) string {
	return config("reject",
		door("udp", `["7000/udp", "8000/udp", "9000/udp"]`, `["22/tcp"]`, "30s", "1h", ""),
		`door "fin" {
  sequence    = ["12000/tcp", "13000/tcp", "14000/tcp"]
  tcp_flags   = "fin,!ack"
  open        = ["2222/tcp"]
  open_for    = "30s"
  seq_timeout = "1h"
}
`,
		door("syn", `["20000/tcp", "21000/tcp", "22000/tcp"]`, `["2223/tcp"]`, "30s", "1h", ""),
		door("mixed", `["30000/tcp", "31000/udp", "32000/tcp"]`, `["2224/tcp"]`, "30s", "1h", ""),
	) + fmt.Sprintf("metrics_listen = %q\n", metrics)
}

// oldFilterOpens reports whether, under the filter of e7b785e (UDP and
// non-SYN TCP only to knock ports), a scan of probe p in this port order
// walked its door of sweepConfig: the door's ports in order, with no
// other knock port of the same protocol between them.
func oldFilterOpens(p Probe, order []uint16) bool {
	at := func(port uint16) int { return slices.Index(order, port) }
	inOrder := func(steps, others []uint16) bool {
		a, b, c := at(steps[0]), at(steps[1]), at(steps[2])
		if a > b || b > c {
			return false
		}
		for _, o := range others {
			if i := at(o); i > a && i < c {
				return false
			}
		}
		return true
	}
	switch p {
	case ProbeUDP:
		return inOrder([]uint16{7000, 8000, 9000}, []uint16{31000})
	case ProbeFIN, ProbeXmas:
		return inOrder([]uint16{12000, 13000, 14000}, []uint16{20000, 21000, 22000, 30000, 32000})
	}
	return true
}

// sweep is one full scan of ports 1..65535, from one address (src, set
// when it runs) to dst.
type sweep struct {
	probe    Probe
	order    string
	ports    []uint16
	src, dst netip.Addr
}

// sweeps returns the scans. Every probe kind is sent in ascending,
// descending and random order, and over IPv4 and IPv6 (not every
// combination: each scan is 65535 packets). Each random order's seed is
// the first (from a base of its own) whose order walked its door on
// e7b785e, so that every UDP, FIN and Xmas scan here, whatever its order
// but descending, opened a door before the fix.
func sweeps() []sweep {
	asc := make([]uint16, 65535)
	for i := range asc {
		asc[i] = uint16(i + 1)
	}
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	plan := []struct {
		probe Probe
		v6    bool
		order string // "asc", "desc" or "random"
	}{
		{ProbeUDP, false, "asc"}, {ProbeUDP, false, "desc"}, {ProbeUDP, false, "random"},
		{ProbeUDP, true, "asc"}, {ProbeUDP, true, "random"},
		{ProbeFIN, false, "asc"}, {ProbeFIN, false, "random"}, {ProbeFIN, true, "asc"},
		{ProbeXmas, false, "random"}, {ProbeXmas, true, "asc"}, {ProbeXmas, false, "desc"},
		{ProbeSYN, false, "asc"}, {ProbeSYN, false, "random"}, {ProbeSYN, true, "desc"},
		{ProbeNULL, false, "asc"}, {ProbeNULL, true, "random"},
	}
	var out []sweep
	for n, pl := range plan {
		sw := sweep{probe: pl.probe, order: "ascending", ports: asc, dst: ServerStranger4}
		if pl.v6 {
			sw.dst = ServerStranger6
		}
		switch pl.order {
		case "desc":
			sw.order, sw.ports = "descending", desc
		case "random":
			for seed := uint64(100*n + 1); ; seed++ {
				sw.ports = slices.Clone(asc)
				rand.New(rand.NewPCG(seed, 0x5e5a3e)).Shuffle(len(sw.ports), func(i, j int) { sw.ports[i], sw.ports[j] = sw.ports[j], sw.ports[i] })
				if oldFilterOpens(pl.probe, sw.ports) {
					sw.order = fmt.Sprintf("random (seed %d)", seed)
					break
				}
			}
		}
		out = append(out, sw)
	}
	return out
}

// counted reports whether some door of sweepConfig counts probe p: the
// daemon must then see every probe of its scan.
func counted(p Probe) bool { return p != ProbeNULL }

// sweepPPS is the highest rate of the scans: the 16 scans' 1M probes take
// about 1M/sweepPPS seconds, or longer where the box cannot send as fast
// (veth delivers in the sender's context: 50-90k packets/s on the 2-core
// test box). SESAME_SWEEP_PPS overrides it.
func sweepPPS() int {
	if n, err := strconv.Atoi(os.Getenv("SESAME_SWEEP_PPS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// TestAttackSweep (issue 11, item 1): full scans that know nothing, of
// ports 1..65535, as UDP, SYN, FIN, NULL and Xmas probes, ascending,
// descending and in random order, over IPv4 and IPv6, from the stranger,
// open no door, and the daemon saw every probe that a door counts. The
// client's real knocks still open each door afterwards. On e7b785e the
// UDP door and the fin,!ack door opened.
func TestAttackSweep(t *testing.T) {
	t.Parallel()
	metrics := netip.MustParseAddrPort("127.0.0.1:9813")
	e := setup(t, sweepConfig(metrics))
	Listen(t, e.Server, 2223)
	Listen(t, e.Server, 2224)
	e.waitLog(t, Msg(logevent.Metrics, "listen", "http://"+metrics.String()+"/metrics"), "the metrics line")

	mac, err := MAC(e.Server, IfServerToStranger)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := OpenRawSender(e.Stranger, IfPeer, mac)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	// Each attempt of a scan comes from an address of its own on the
	// stranger's link, so that it starts with no state in the matcher.
	var srcs []netip.Addr
	newSrc := func(v6 bool) netip.Addr {
		n := len(srcs)
		a, args := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + n)}), []string{"/24"}
		if v6 {
			a, args = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 14: 1, 15: byte(n)}), []string{"/64", "nodad"}
		}
		e.Stranger.Exec(t, "ip", append([]string{"addr", "add", a.String() + args[0], "dev", IfPeer}, args[1:]...)...)
		srcs = append(srcs, a)
		return a
	}
	before := scrape(t, e, metrics)
	hits := func() int { return int(scrape(t, e, metrics)["sesame_hits_total"] - before["sesame_hits_total"]) }
	_, drops0 := captureStats(t, e.D, IfServerToStranger)
	if drops0 < 0 {
		t.Fatal("the daemon logged no capture-stats line on SIGUSR1")
	}
	drops := drops0

	// Every scan at sweepPPS; when the capture ring dropped part of one
	// (the daemon could not keep up: it counts such drops), the scan is
	// repeated from a new address at half the rate, so that each scan is
	// seen whole once. A probe lost without being counted fails the test.
	pps := sweepPPS()
	start := time.Now()
	budget := start.Add(40 * time.Second)
	var ran []sweep // every attempt, for the grant checks
	probes, scans, countedScans := 0, 0, 0
	for _, sw := range sweeps() {
		scans++
		if counted(sw.probe) {
			countedScans++
		}
		for rate := pps; ; rate /= 2 {
			sw.src = newSrc(sw.dst.Is6())
			ran = append(ran, sw)
			h0 := hits()
			sent, err := tx.Send(sw.probe, sw.src, sw.dst, sw.ports, rate, 30*time.Second)
			if err != nil {
				t.Fatalf("%s scan, %s, from %s: %v", sw.probe.Name, sw.order, sw.src, err)
			}
			probes += sent
			want := 0 // the probes that some door counts: each must reach the matcher
			if counted(sw.probe) {
				want = sent
			}
			// The daemon has handled the scan once its hit counter
			// reaches want, or stops moving short of it for 2s (drops).
			seen := hits() - h0
			for last, still := -1, 0; seen < want && still < 20; {
				time.Sleep(100 * time.Millisecond)
				if seen == last {
					still++
				} else {
					last, still = seen, 0
				}
				seen = hits() - h0
			}
			dropped := 0
			if seen < want {
				_, d := captureStats(t, e.D, IfServerToStranger)
				if d < 0 {
					t.Fatal("the daemon logged no capture-stats line on SIGUSR1")
				}
				dropped, drops = d-drops, d
			}
			name := fmt.Sprintf("%s scan, %s, %s, %d packets/s", sw.probe.Name, sw.order, familyName(sw.src), rate)
			switch {
			case seen == want:
			case seen > want:
				t.Errorf("%s: the matcher saw %d probes, but doors count only %d of them", name, seen, want)
			case seen+dropped != want:
				t.Errorf("%s: the matcher saw %d of the %d probes that a door counts, and capture counted %d dropped: %d probes were lost unobserved", name, seen, want, dropped, want-seen-dropped)
			case time.Now().After(budget) || rate < 5000:
				t.Errorf("%s: the capture ring dropped %d of %d probes; no time left to repeat the scan slower", name, dropped, want)
			default:
				t.Logf("%s: the capture ring dropped %d of %d probes (the daemon fell behind); again at half the rate", name, dropped, want)
				continue
			}
			break
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d scans (%d attempts), %d probes in %s (%.0f packets/s); the capture ring dropped %d in all",
		scans, len(ran), probes, elapsed.Round(time.Millisecond), float64(probes)/elapsed.Seconds(), drops-drops0)
	after := scrape(t, e, metrics)

	// No door opened: no grant for any scanning address, in any set of the
	// table, and no open line.
	bySrc := map[netip.Addr]sweep{}
	for _, sw := range ran {
		bySrc[sw.src] = sw
	}
	for _, el := range tableElements(t, e) {
		if sw, ok := bySrc[el.Addr]; ok {
			t.Errorf("%s scan, %s, %s: grant %v", sw.probe.Name, sw.order, familyName(sw.src), el)
		}
	}
	for _, en := range e.D.Entries(Msg(logevent.Open)) {
		if a, err := netip.ParseAddr(en.Str("src")); err == nil {
			if sw, ok := bySrc[a]; ok {
				t.Errorf("%s scan, %s, %s: the daemon logged %v", sw.probe.Name, sw.order, familyName(sw.src), en)
			}
		}
	}

	// Each scan that a door counts reset a door it had started.
	resets := 0.0
	for k, v := range after {
		if strings.HasPrefix(k, "sesame_resets_total") {
			resets += v - before[k]
		}
	}
	if resets < float64(countedScans) {
		t.Errorf("%v resets for %d scans that a door counts, want at least one each", resets, countedScans)
	}

	// Positive control: the client's real knocks open every door.
	knock(t, e.Client, ServerClient4, "7000:udp", "8000:udp", "9000:udp")
	e.waitGrant(t, Client4, 22)
	knock(t, e.Client, ServerClient6, "7000:udp", "8000:udp", "9000:udp")
	e.waitGrant(t, Client6, 22)
	cmac, err := MAC(e.Server, IfServerToClient)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := OpenRawSender(e.Client, IfPeer, cmac)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if _, err := ctx.Send(ProbeFIN, Client4, ServerClient4, []uint16{12000, 13000, 14000}, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitGrant(t, Client4, 2222)
	knock(t, e.Client, ServerClient4, "20000", "21000", "22000")
	e.waitGrant(t, Client4, 2223)
	knock(t, e.Client, ServerClient4, "30000", "31000:udp", "32000")
	e.waitGrant(t, Client4, 2224)
	for _, port := range []uint16{22, 2222, 2223, 2224} {
		mustConnect(t, e.Client, ServerClient4, port)
	}
	mustConnect(t, e.Client, ServerClient6, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// tableElements lists the elements of every set of table inet sesame
// whose key is address . protocol . port: the grants, whatever the sets
// are named.
func tableElements(t *testing.T, e *env) []Element {
	t.Helper()
	out, err := e.Server.Try("nft", "-j", "list", "table", "inet", "sesame")
	if err != nil {
		t.Fatalf("nft -j list table inet sesame: %v: %s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse nft json: %v", err)
	}
	var elems []Element
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			if el, err := parseElem(raw); err == nil {
				elems = append(elems, el)
			}
		}
	}
	return elems
}

// captureStats asks the daemon for its capture counters (SIGUSR1) and
// returns the packets that passed the filter on ifname and the drops; -1
// each when the daemon logged none.
func captureStats(t *testing.T, d *Daemon, ifname string) (packets, drops int) {
	t.Helper()
	m := Msg(logevent.CaptureStats, "interface", ifname)
	n := d.CountLog(m)
	if err := d.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitCount(5*time.Second, n, m); err != nil {
		t.Logf("no capture-stats line: %v", err)
		return -1, -1
	}
	es := d.Entries(m)
	last := es[len(es)-1]
	num := func(k string) int {
		f, _ := last[k].(float64) // JSON numbers
		return int(f)
	}
	return num("packets"), num("drops")
}

package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// A daemon that stalls (SIGSTOP for 0.3 s: a GC pause, a busy core, a
// slow disk) while ~20k spoofed SYNs a second with ordinary options reach
// random ports of its interface loses nothing it did not count: an IPv6
// knock and an SPA packet sent during the stall both open, and every
// packet that passed a capture filter was either read or counted as
// dropped (capture-stats and sesame_capture_drops_total).
//
// On e7b785e both vanish, uncounted: 128-byte ring frames held 48 bytes of
// packet, so every 60-byte SYN was copied to the socket queue, which
// filled after ~300 of them; the knock and the SPA packet then got a
// truncated frame and no copy.
func TestAttackStall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, _, _ := spaKeys(t, dir, "alice")
	metrics := netip.MustParseAddrPort("127.0.0.1:9817")
	cfg := config("reject", sshDoor("60s", "10s"), fmt.Sprintf(`door "spa" {
  spa { port = 62201 }
  client "alice" { key_file = %q }
  open     = ["22/tcp"]
  open_for = "30s"
}
`, keyFile)) + fmt.Sprintf("state_dir = %q\nmetrics_listen = %q\n", filepath.Join(dir, "state"), metrics.String())
	e := setup(t, cfg)

	flood := StartSYNFlood(t, FloodSpec{
		From: e.Client, Iface: IfPeer, To: e.Server, PeerIface: IfServerToClient,
		Dst:  ServerClient4,
		Skip: []uint16{22, 2222, 7000, 8000, 9000, 62201},
		PPS:  20000, For: 3 * time.Second, MaxPackets: 60000,
	})
	time.Sleep(500 * time.Millisecond) // the flood is steady

	if err := e.D.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	time.Sleep(100 * time.Millisecond) // a backlog builds up
	knock(t, e.Client, ServerClient6, seqSSH...)
	if out, err := e.Client.Try(SesameBin, "knock", "--spa", keyFile, "-A", "tcp/22", ServerClient4.String()); err != nil {
		t.Fatalf("sesame knock --spa: %v: %s", err, out)
	}
	time.Sleep(300*time.Millisecond - time.Since(stopped))
	stall := time.Since(stopped)
	if err := e.D.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for what, addr := range map[string]netip.Addr{"the IPv6 knock": Client6, "the SPA packet": Client4} {
		if !Poll(5*time.Second, func() bool { _, ok := Find(e.grants(t, addr), addr, "tcp", 22); return ok }) {
			t.Errorf("%s sent during the stall opened nothing: no grant %s . tcp . 22 within 5s", what, addr)
		}
	}
	sent, err := flood.Wait()
	if err != nil {
		t.Errorf("flood: %v", err)
	}
	t.Logf("stalled %v; flood: %d SYNs", stall.Round(time.Millisecond), sent)

	// Nothing vanished uncounted: on the flooded interface, the packets
	// that passed the filters are the ones read plus the ones dropped.
	time.Sleep(300 * time.Millisecond) // the readers catch up
	n := e.D.CountLog(Msg(logevent.CaptureStats, "interface", IfServerToClient))
	if err := e.D.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := e.D.WaitCount(5*time.Second, n+1, Msg(logevent.CaptureStats, "interface", IfServerToClient)); err != nil {
		t.Fatal(err)
	}
	var passed, dropped, truncated float64
	for _, en := range e.D.Entries(Msg(logevent.CaptureStats, "interface", IfServerToClient))[n:] {
		for k, v := range map[string]*float64{"packets": &passed, "drops": &dropped, "truncated": &truncated} {
			x, err := strconv.ParseFloat(en.Str(k), 64)
			if err != nil {
				t.Fatalf("capture-stats %v: %s: %v", en, k, err)
			}
			*v += x
		}
	}
	m := scrape(t, e, metrics)
	read := m[`sesame_packets_total{interface="`+IfServerToClient+`"}`]
	full := m[`sesame_capture_drops_total{interface="`+IfServerToClient+`",reason="full",socket="knock"}`] +
		m[`sesame_capture_drops_total{interface="`+IfServerToClient+`",reason="full",socket="spa"}`]
	t.Logf("%s: %v packets passed the filters, %v read, %v dropped (metrics: %v), %v truncated", IfServerToClient, passed, read, dropped, full, truncated)
	if passed < float64(sent)/2 {
		t.Errorf("%v packets passed the filters of %d sent: the flood did not reach the daemon", passed, sent)
	}
	if passed != read+dropped {
		t.Errorf("%v packets passed the filters, %v were read and %v counted as dropped: %v vanished", passed, read, dropped, passed-read-dropped)
	}
	if full != dropped || truncated != 0 {
		t.Errorf("sesame_capture_drops_total says %v dropped, capture-stats %v; %v truncated", full, dropped, truncated)
	}
}

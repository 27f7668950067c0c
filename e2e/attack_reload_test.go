package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// raceBin builds cmd/sesame with the race detector into dir (or takes
// $SESAME_RACE_BIN).
func raceBin(dir string) (string, error) {
	if b := os.Getenv("SESAME_RACE_BIN"); b != "" {
		return binPath(b)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "sesame-race")
	cmd := exec.Command("go", "build", "-race", "-o", out, "./cmd/sesame")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -race ./cmd/sesame: %v\n%s", err, b)
	}
	return out, nil
}

// Reloads that remove a flooded interface, add it back and change the
// doors, again and again, while the healer re-binds an interface that is
// deleted and created again (and flooded too) and one-time doors advance:
// the daemon, built with the race detector, logs `reloaded` after every
// SIGHUP, a legit knock opens after each, and no race is reported.
//
// On e7b785e the first reload hangs for good: it runs on the matcher's
// goroutine and waits for the removed interface's reader, which waits to
// hand that goroutine a batch.
func TestAttackReload(t *testing.T) {
	t.Parallel()
	e := &env{Topo: NewTopo(t)}
	bin, err := raceBin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	Listen(t, e.Server, 22)
	Listen(t, e.Server, 2222)
	const ifX, ifXPeer = "s-x", "x-peer" // the interface the healer re-binds
	addX := func() {
		e.Server.Exec(t, "ip", "link", "add", ifX, "type", "veth", "peer", "name", ifXPeer, "netns", e.Stranger.Name)
		e.Server.Exec(t, "ip", "addr", "add", "203.0.113.1/24", "dev", ifX)
		e.Server.Exec(t, "ip", "link", "set", ifX, "up")
		e.Stranger.Exec(t, "ip", "addr", "add", "203.0.113.2/24", "dev", ifXPeer)
		e.Stranger.Exec(t, "ip", "link", "set", ifXPeer, "up")
	}
	addX()

	dir := t.TempDir()
	seqFile := filepath.Join(dir, "ot.seqs")
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("%d,%d:udp,%d", 31000+i, 32000+i, 33000+i))
	}
	if err := os.WriteFile(seqFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Odd configs drop the flooded s-str and move the ssh door's sequence.
	seqs := [][]string{{"7000", "8000:udp", "9000"}, {"7100", "8100:udp", "9100"}}
	cfg := func(i int) string {
		ifaces := []string{IfServerToClient, IfServerToStranger, ifX}
		seq := seqs[i%2]
		if i%2 == 1 {
			ifaces = []string{IfServerToClient, ifX}
		}
		return fmt.Sprintf(`interfaces = ["%s"]
state_dir = %q
closed = "reject"
door "ssh" {
  sequence = ["%s/tcp", "%s/udp", "%s/tcp"]
  open = ["22/tcp"]
  open_for = "60s"
  seq_timeout = "5s"
}
door "ot" {
  one_time_sequences = %q
  open = ["2222/tcp"]
  open_for = "60s"
}
`, strings.Join(ifaces, `", "`), filepath.Join(dir, "state"), seq[0], strings.TrimSuffix(seq[1], ":udp"), seq[2], seqFile)
	}
	cfgPath := WriteConfig(t, cfg(0))
	e.D = StartDaemonWith(t, e.Server, cfgPath, bin, nil, []string{"GORACE=halt_on_error=1"})

	floodSpec := func(from, peerIf string, dst netip.Addr) FloodSpec {
		return FloodSpec{From: e.Stranger, Iface: from, To: e.Server, PeerIface: peerIf, Dst: dst,
			Skip: []uint16{22, 2222}, PPS: 20000, For: 40 * time.Second, MaxPackets: 800000}
	}
	StartSYNFlood(t, floodSpec(IfPeer, IfServerToStranger, ServerStranger4))
	var xFlood *SYNFlood
	churn := func() { // delete and re-create s-x, flooded again
		if xFlood != nil {
			xFlood.Stop()
		}
		e.Server.Exec(t, "ip", "link", "del", ifX)
		addX()
		s := floodSpec(ifXPeer, ifX, netip.MustParseAddr("203.0.113.1"))
		s.PPS = 10000
		xFlood = StartSYNFlood(t, s)
	}
	rebound := Msg(logevent.CaptureRebound, "interface", ifX)
	reloaded := Msg(logevent.Reloaded)

	const rounds = 6
	for i := 1; i <= rounds; i++ {
		// The healer re-binds s-x while the reload runs (or the reload
		// reopens it, if the healer saw it gone in between).
		nr := e.D.CountLog(reloaded)
		if err := os.WriteFile(cfgPath, []byte(cfg(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		churn()
		start := time.Now()
		if err := e.D.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := e.D.WaitCount(10*time.Second, nr, reloaded); err != nil {
			t.Fatalf("round %d: SIGHUP: %v", i, err)
		}
		t.Logf("round %d: reloaded in %v", i, time.Since(start).Round(time.Millisecond))

		// A knock on the new doors opens, and a one-time door advances.
		knock(t, e.Client, ServerClient4, seqs[i%2]...)
		e.waitGrant(t, Client4, 22)
		knock(t, e.Client, ServerClient4, fmt.Sprint(31000+i-1), fmt.Sprintf("%d:udp", 32000+i-1), fmt.Sprint(33000+i-1))
		e.waitGrant(t, Client4, 2222)
		if err := FlushGrants(e.Server); err != nil {
			t.Fatal(err)
		}

		// The healer re-binds s-x, reading the filters' policy, after
		// the one-time door advanced in the live one.
		nb := e.D.CountLog(rebound)
		churn()
		if err := e.D.WaitCount(10*time.Second, nb, rebound); err != nil {
			t.Fatalf("round %d: s-x re-created: %v", i, err)
		}
	}
	if exited, err := e.D.Exited(); exited {
		t.Fatalf("daemon exited: %v", err)
	}
	if strings.Contains(e.D.Log(), "DATA RACE") {
		t.Fatal("the race detector reported a data race (log below)")
	}
	if err := e.D.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if strings.Contains(e.D.Log(), "DATA RACE") {
		t.Fatal("the race detector reported a data race at shutdown")
	}
}

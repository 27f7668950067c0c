package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// The table is put back within a second or so after an admin's `nft flush
// ruleset` or a deleted rule, with a warning that says what changed and
// that grants went with a flushed table; new knocks work at once.
func TestTableHeals(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("60s", "5s")))
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)

	restored := Msg(logevent.TableRestored)
	n := e.D.CountLog(restored)
	start := time.Now()
	e.Server.Exec(t, "nft", "flush", "ruleset")
	if err := e.D.WaitCount(5*time.Second, n, restored); err != nil {
		t.Fatalf("after nft flush ruleset: %v", err)
	}
	t.Logf("flush ruleset -> table restored in %s", time.Since(start).Round(time.Millisecond))
	warn := e.waitLog(t, Msg(logevent.TableChanged), "the warning")
	if !strings.Contains(warn.Str("what"), "gone") || !strings.Contains(warn.Str("grants"), "lost") {
		t.Errorf("warning %v: want what=...gone and grants=lost...", warn)
	}
	e.noGrant(t, Client4)
	mustRefuse(t, e.Client, ServerClient4, 22) // guarded again, the grant is gone
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)

	// One rule deleted by hand: the chain is rebuilt, grants stay.
	out := e.Server.Exec(t, "nft", "-a", "list", "chain", "inet", "sesame", "input")
	handle := ""
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "@guarded") {
			_, handle, _ = strings.Cut(line, "# handle ")
		}
	}
	if handle == "" {
		t.Fatalf("no @guarded rule with a handle in:\n%s", out)
	}
	n = e.D.CountLog(restored)
	e.Server.Exec(t, "nft", "delete", "rule", "inet", "sesame", "input", "handle", strings.TrimSpace(handle))
	if err := e.D.WaitCount(5*time.Second, n, restored); err != nil {
		t.Fatalf("after a deleted rule: %v", err)
	}
	if out := e.Server.Exec(t, "nft", "list", "chain", "inet", "sesame", "input"); !strings.Contains(out, "@guarded") {
		t.Errorf("chain not rebuilt:\n%s", out)
	}
	e.waitGrant(t, Client4, 22) // a rebuilt chain keeps the grant sets
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
}

// Capture survives its interface going down and up, and being deleted and
// created again under the same name (a new ifindex): it re-binds, logs it,
// and a knock opens again.
func TestCaptureRebinds(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("60s", "5s")))

	e.Server.Exec(t, "ip", "link", "set", IfServerToClient, "down")
	e.waitLog(t, Msg(logevent.InterfaceDown, "interface", IfServerToClient), "interface down")
	e.Server.Exec(t, "ip", "link", "set", IfServerToClient, "up")
	e.waitLog(t, Msg(logevent.InterfaceUp, "interface", IfServerToClient), "interface up")
	e.Client.Exec(t, "ip", "link", "set", IfPeer, "up")
	waitReachable(t, e)
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	if n := len(e.D.Entries(Msg(logevent.CaptureReadFailed))); n > 0 {
		t.Errorf("%d capture read errors logged for a link that went down", n)
	}
	if err := FlushGrants(e.Server); err != nil {
		t.Fatal(err)
	}

	rebound := Msg(logevent.CaptureRebound, "interface", IfServerToClient)
	e.Server.Exec(t, "ip", "link", "del", IfServerToClient)
	e.waitLog(t, Msg(logevent.InterfaceGone, "interface", IfServerToClient), "interface gone")
	e.Server.Exec(t, "ip", "link", "add", IfServerToClient, "type", "veth", "peer", "name", IfPeer, "netns", e.Client.Name)
	e.Server.Exec(t, "ip", "addr", "add", ServerClient4.String()+"/24", "dev", IfServerToClient)
	e.Server.Exec(t, "ip", "link", "set", IfServerToClient, "up")
	e.Client.Exec(t, "ip", "addr", "add", Client4.String()+"/24", "dev", IfPeer)
	e.Client.Exec(t, "ip", "link", "set", IfPeer, "up")
	e.waitLog(t, rebound, "capture re-bound")
	waitReachable(t, e)
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)
}

// waitReachable waits until the client reaches the server's port 22 at the
// IP level (refused: the link and ARP are up again).
func waitReachable(t *testing.T, e *env) {
	t.Helper()
	if !Poll(5*time.Second, func() bool {
		err := Connect(e.Client, ServerClient4, 22, 300*time.Millisecond)
		return err != nil && strings.Contains(err.Error(), "refused")
	}) {
		t.Fatalf("server not reachable from the client after the link came back")
	}
}

// A daemon started while one of its interfaces is down captures on it once
// it comes up: the socket bound to a down link must hear the knock.
func TestCaptureStartsDown(t *testing.T) {
	t.Parallel()
	tp := NewTopo(t) // skips without root, fails under SESAME_REQUIRE_ROOT=1
	Listen(t, tp.Server, 22)
	tp.Server.Exec(t, "ip", "link", "set", IfServerToClient, "down")
	e := &env{Topo: tp, D: StartDaemon(t, tp.Server, config("reject", sshDoor("60s", "5s")))}
	e.Server.Exec(t, "ip", "link", "set", IfServerToClient, "up")
	e.Client.Exec(t, "ip", "link", "set", IfPeer, "up")
	waitReachable(t, e)
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)
}

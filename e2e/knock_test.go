package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// Case 1: before any knock the guarded port is closed to everyone (drop:
// connects time out), while the daemon is serving.
func TestClosedBeforeKnock(t *testing.T) {
	t.Parallel()
	e := setup(t, config("drop", sshDoor("30s", "5s")))
	mustTimeOut(t, e.Client, ServerClient4, 22)
	mustTimeOut(t, e.Stranger, ServerStranger4, 22)
	mustTimeOut(t, e.Client, ServerClient6, 22)
	e.noGrant(t, Client4)
	e.noGrant(t, Client6)
}

// Case 2: a correct knock (TCP and UDP steps) grants the client, and only
// the client; SIGTERM then exits 0 and leaves the table and the grant.
func TestKnockOpens(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	knock(t, e.Client, ServerClient4, seqSSH...)
	// A static door confirms (issue 11): the knock is pending for 10s...
	el := e.waitGrant(t, Client4, 22)
	if el.Set != "pend4_ssh" || el.Comment != "ssh" || el.Timeout != 10*time.Second || el.Expires <= 0 || el.Expires > 10*time.Second {
		t.Errorf("grant %v: want it in pend4_ssh, comment \"ssh\", timeout 10s, 0 < expires <= 10s", el)
	}
	if got := e.grants(t, Client4); len(got) != 1 {
		t.Errorf("grants = %v, want exactly the one element", got)
	}
	open := e.waitLog(t, Msg(logevent.Open, "door", "ssh", "src", Client4.String()), "open")
	if open.Str("ports") != "22/tcp" || open.Str("for") != "30s" || open.Str("confirm") != "10s" {
		t.Errorf("open log line %v: want ports=22/tcp for=30s confirm=10s", open)
	}
	if len(e.D.Entries(Msg(logevent.Stage, "door", "ssh", "src", Client4.String(), "stage", "2/3"))) == 0 {
		t.Errorf("no stage=2/3 log line for %s", Client4)
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	// ...and its connection makes it a grant for open_for.
	if el := e.waitIn(t, "open4_ssh", Client4, 22); el.Timeout != 30*time.Second || el.Expires <= 25*time.Second {
		t.Errorf("confirmed grant %v: want timeout 30s, expires in (25s, 30s]", el)
	}
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
	mustRefuse(t, e.Client, ServerClient6, 22) // the grant is per address
	e.noGrant(t, Stranger4)

	out, err := e.Server.Try(SesameBin, "status", "-c", e.D.Config, "--json")
	if err != nil || !strings.Contains(out, Client4.String()) || !strings.Contains(out, "ssh") {
		t.Errorf("sesame status --json: %v: %s; want the client's grant", err, out)
	}

	if err := e.D.Stop(); err != nil {
		t.Errorf("SIGTERM: daemon exit %v, want status 0", err)
	}
	if _, ok := Find(e.grants(t, Client4), Client4, "tcp", 22); !ok {
		t.Errorf("the grant went away with the daemon; want it kept")
	}
	mustRefuse(t, e.Stranger, ServerStranger4, 22) // still fail closed
}

// Case 3: a grant expires after open_for; new connects fail, a connection
// made during the grant keeps working.
func TestGrantExpires(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("3s", "5s")))
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	held, err := Dial(e.Client, ServerClient4, 22, 2*time.Second)
	if err != nil {
		t.Fatalf("connect during the grant: %v", err)
	}
	defer held.Close()
	if err := held.Echo("during", 2*time.Second); err != nil {
		t.Fatalf("echo during the grant: %v", err)
	}
	e.waitGone(t, Client4, 22, 8*time.Second)
	mustRefuse(t, e.Client, ServerClient4, 22)
	if err := held.Echo("after", 2*time.Second); err != nil {
		t.Errorf("established connection broke when the grant expired: %v", err)
	}
}

// Case 4: sequences that must not open, each with the daemon's log line
// proving it saw them, then a correct knock to prove the door still works.
func TestNoGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		seqTimeout string
		knocks     func(t *testing.T, e *env)
		wantLog    string
	}{
		{
			name: "wrong order", seqTimeout: "5s", wantLog: "reset",
			knocks: func(t *testing.T, e *env) {
				knock(t, e.Client, ServerClient4, "7000", "9000", "8000:udp")
			},
		},
		{
			name: "late step", seqTimeout: "1s", wantLog: "timeout",
			knocks: func(t *testing.T, e *env) {
				knock(t, e.Client, ServerClient4, "7000", "8000:udp")
				e.waitLog(t, Msg(logevent.Stage, "src", Client4.String(), "stage", "2/3"), "stage 2/3")
				// Real time must pass the 1s seq_timeout here: the
				// daemon's clock is the kernel's, not ours.
				time.Sleep(1300 * time.Millisecond)
				knock(t, e.Client, ServerClient4, "9000")
			},
		},
		{
			name: "bare SYN to another port mid-sequence", seqTimeout: "5s", wantLog: "reset",
			knocks: func(t *testing.T, e *env) {
				knock(t, e.Client, ServerClient4, "7000", "8000:udp", "1234", "9000")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, config("reject", sshDoor("30s", tt.seqTimeout)))
			tt.knocks(t, e)
			e.waitLog(t, Msg(tt.wantLog, "src", Client4.String()), tt.wantLog)
			// The daemon has handled every knock packet once it logged the
			// verdict on the last one.
			if got := e.D.Entries(Msg(logevent.Open, "src", Client4.String())); len(got) != 0 {
				t.Errorf("daemon logged open: %v", got)
			}
			e.noGrant(t, Client4)
			mustRefuse(t, e.Client, ServerClient4, 22)

			knock(t, e.Client, ServerClient4, seqSSH...)
			e.waitGrant(t, Client4, 22)
			mustConnect(t, e.Client, ServerClient4, 22)
		})
	}
}

// Case 5: every knock packet sent twice (retransmits) still opens.
func TestRetransmittedKnock(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	knock(t, e.Client, ServerClient4, "7000", "7000", "8000:udp", "8000:udp", "9000", "9000")
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)
	for _, en := range e.D.Entries(nil) {
		if en.Str("msg") == logevent.Open {
			break
		}
		if en.Str("msg") == logevent.Reset || en.Str("msg") == logevent.Timeout {
			t.Errorf("a repeated knock caused %v before the door opened", en)
		}
	}
}

// Case 6: an IPv6 knock grants in the IPv6 sets and opens IPv6 only.
func TestKnockIPv6(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	knock(t, e.Client, ServerClient6, seqSSH...)
	el := e.waitGrant(t, Client6, 22)
	if el.Set != "pend6_ssh" || el.Comment != "ssh" || el.Timeout != 10*time.Second {
		t.Errorf("grant %v: want it pending in pend6_ssh, comment \"ssh\", timeout 10s", el)
	}
	e.waitLog(t, Msg(logevent.Open, "door", "ssh", "src", Client6.String()), "open")
	mustConnect(t, e.Client, ServerClient6, 22)
	if el := e.waitIn(t, "open6_ssh", Client6, 22); el.Timeout != 30*time.Second {
		t.Errorf("confirmed grant %v: want timeout 30s", el)
	}
	mustRefuse(t, e.Client, ServerClient4, 22)
	mustRefuse(t, e.Stranger, ServerStranger6, 22)
	e.noGrant(t, Client4)
}

// Case 7: the close sequence revokes a grant early.
func TestCloseSequence(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", door("ssh", `["7000/tcp", "8000/udp", "9000/tcp"]`, `["22/tcp"]`, "1h", "5s",
		`["9000/tcp", "8000/udp", "7000/tcp"]`)))
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)
	knock(t, e.Client, ServerClient4, closeSSH...)
	e.waitLog(t, Msg(logevent.Close, "door", "ssh", "src", Client4.String()), "close")
	e.waitGone(t, Client4, 22, 5*time.Second)
	mustRefuse(t, e.Client, ServerClient4, 22)
}

// Case 8: kill -9 with a live grant: the grant stays and still works, the
// port stays closed to others; a restarted daemon keeps it; it expires.
func TestKillKeepsGrant(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("6s", "5s")))
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	e.D.Kill()

	if _, ok := Find(e.grants(t, Client4), Client4, "tcp", 22); !ok {
		t.Fatalf("grant gone after kill -9")
	}
	mustConnect(t, e.Client, ServerClient4, 22) // confirmed by the kernel alone
	before := e.waitIn(t, "open4_ssh", Client4, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)

	d2 := StartDaemonFile(t, e.Server, e.D.Config)
	after := e.waitIn(t, "open4_ssh", Client4, 22)
	if _, ok := Find(e.grants(t, Client4), Client4, "tcp", 22); !ok {
		t.Fatalf("restarted daemon removed the live grant; log:\n%s", d2.Log())
	}
	if after.Expires > before.Expires || after.Timeout != before.Timeout {
		t.Errorf("restart changed the grant: before %v, after %v; want it untouched", before, after)
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	e.waitGone(t, Client4, 22, 10*time.Second)
	mustRefuse(t, e.Client, ServerClient4, 22)
	if exited, err := d2.Exited(); exited {
		t.Errorf("restarted daemon exited: %v", err)
	}
}

// Case 9: SIGHUP with a broken config keeps the old policy; with a new
// config, the old sequence no longer opens, the new ones do, and live
// grants stay.
func TestReload(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	path := e.D.Config
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	write("interfaces = [\ndoor {\n")
	if err := e.D.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, Msg(logevent.ReloadFailed), "reload-failed")
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)

	write(config("reject",
		door("ssh", `["7100/tcp", "8100/udp", "9100/tcp"]`, `["22/tcp"]`, "30s", "5s", ""),
		door("alt", `["7200/tcp", "8200/udp", "9200/tcp"]`, `["2222/tcp"]`, "30s", "5s", "")))
	if err := e.D.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, Msg(logevent.Reloaded), "reloaded")
	if _, ok := Find(e.grants(t, Client4), Client4, "tcp", 22); !ok {
		t.Errorf("reload dropped the client's live grant: %v", e.grants(t, Client4))
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 2222) // newly guarded

	// The old sequence, then the alt door's: packets are handled in order,
	// so once alt has opened, the old knock has been judged.
	knock(t, e.Stranger, ServerStranger4, seqSSH...)
	knock(t, e.Stranger, ServerStranger4, "7200", "8200:udp", "9200")
	if el := e.waitGrant(t, Stranger4, 2222); el.Comment != "alt" {
		t.Errorf("grant %v: want comment \"alt\"", el)
	}
	if _, ok := Find(e.grants(t, Stranger4), Stranger4, "tcp", 22); ok {
		t.Errorf("the old sequence still opened 22 after reload")
	}
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
	mustConnect(t, e.Stranger, ServerStranger4, 2222)

	knock(t, e.Stranger, ServerStranger4, "7100", "8100:udp", "9100")
	e.waitGrant(t, Stranger4, 22)
	mustConnect(t, e.Stranger, ServerStranger4, 22)
	if exited, err := e.D.Exited(); exited {
		t.Errorf("daemon exited during reloads: %v", err)
	}
}

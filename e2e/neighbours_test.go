package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// loadRuleset loads nft text into ns with nft -f, as an admin's
// `nft -f /etc/nftables.conf` does.
func loadRuleset(t *testing.T, ns *nstest.NS, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "nftables.conf")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "-f", f)
}

// doctorFixture is a ruleset of the doctor's tests.
func doctorFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "doctor", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDoctorOwnNftablesConf: a hand-written nftables.conf with policy drop
// that does not accept the guarded port. sesame doctor says so (exit 1),
// naming the chain and the fix, and so does the daemon at startup; a
// knocker is granted by sesame yet dropped by that chain. Running the
// suggested nft command clears the finding (exit 0) and lets the knocker
// in, while a stranger stays out.
func TestDoctorOwnNftablesConf(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	Listen(t, tp.Server, 22)
	loadRuleset(t, tp.Server, doctorFixture(t, "nftables-conf.nft"))
	text := config("reject", sshDoor("30s", "5s"))
	cfg := WriteConfig(t, text)

	if out, err := tp.Server.Try(SesameBin, "doctor", "-c", cfg, "extra"); exitCode(err) != 2 {
		t.Errorf("doctor with an operand: exit %d, %q; want 2", exitCode(err), out)
	}
	out, err := tp.Server.Try(SesameBin, "doctor", "-c", cfg)
	if exitCode(err) != 1 || !strings.Contains(out, "no-table: ") ||
		!strings.Contains(out, "blocked: 22/tcp: table inet filter chain input policy drop") {
		t.Fatalf("doctor before the daemon: exit %d:\n%s\nwant 1, no-table and blocked 22/tcp", exitCode(err), out)
	}

	e := &env{Topo: tp, D: StartDaemonFile(t, tp.Server, cfg)}
	f := e.waitLog(t, Msg(logevent.DoctorFinding, "kind", "blocked", "port", "22/tcp"), "doctor-finding")
	if f.Str("where") != "table inet filter chain input policy drop" || !strings.HasPrefix(f.Str("fix"), "nft insert rule inet filter input tcp dport 22 accept") {
		t.Errorf("startup finding %v", f)
	}
	out, err = tp.Server.Try(SesameBin, "doctor", "-c", cfg)
	if exitCode(err) != 1 || strings.Contains(out, "no-table") || strings.Count(out, "\n") != 1 {
		t.Errorf("doctor with the daemon: exit %d:\n%s\nwant 1 and the one finding", exitCode(err), out)
	}

	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustTimeOut(t, e.Client, ServerClient4, 22) // granted by sesame, dropped by nftables.conf

	// The fix, exactly as doctor wrote it.
	fix := strings.SplitN(strings.SplitN(out, "; fix: ", 2)[1], " (", 2)[0]
	args := strings.Fields(fix)
	if args[0] != "nft" {
		t.Fatalf("fix %q: want an nft command", fix)
	}
	tp.Server.Exec(t, "nft", args[1:]...)
	out, err = tp.Server.Try(SesameBin, "doctor", "-c", cfg)
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("doctor after %q: exit %d:\n%s\nwant 0", fix, exitCode(err), out)
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
}

// TestDoctorForwardDrop: a forward door beside a hand-written
// nftables.conf whose forward chain has policy drop and no accept. The
// daemon's startup findings and sesame doctor (which read sesame's own
// forward chain, with its `ct original` rules, back over netlink) report
// the target blocked at that policy; the suggested nft command clears it.
func TestDoctorForwardDrop(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	loadRuleset(t, tp.Server, doctorFixture(t, "nftables-conf.nft"))
	cfg := WriteConfig(t, fwdConfig(`"8080/tcp"`))

	e := &env{Topo: tp, D: StartDaemonFile(t, tp.Server, cfg)}
	f := e.waitLog(t, Msg(logevent.DoctorFinding, "kind", "blocked", "port", "8080/tcp"), "doctor-finding")
	const where = "table inet filter chain forward policy drop"
	if f.Str("where") != where || !strings.Contains(f.Str("fix"), "nft insert rule inet filter forward ct status dnat meta l4proto tcp ct original proto-dst 8080 accept") {
		t.Errorf("startup finding %v", f)
	}
	out, err := tp.Server.Try(SesameBin, "doctor", "-c", cfg)
	if exitCode(err) != 1 || !strings.Contains(out, "blocked: 8080/tcp: "+where) {
		t.Fatalf("doctor: exit %d:\n%s\nwant 1 and blocked 8080/tcp", exitCode(err), out)
	}
	var fix string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "blocked: 8080/tcp") {
			fix = strings.SplitN(strings.SplitN(line, "; fix: ", 2)[1], " (", 2)[0]
		}
	}
	args := strings.Fields(fix)
	if len(args) == 0 || args[0] != "nft" {
		t.Fatalf("fix %q: want an nft command", fix)
	}
	tp.Server.Exec(t, "nft", args[1:]...)
	out, err = tp.Server.Try(SesameBin, "doctor", "-c", cfg)
	if strings.Contains(out, "8080/tcp") || strings.Contains(out, "doctor-failed") {
		t.Errorf("doctor after %q: exit %d:\n%s\nwant no finding for 8080/tcp", fix, exitCode(err), out)
	}
}

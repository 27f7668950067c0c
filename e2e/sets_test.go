package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// ownChain is an admin's input chain that uses sesame's sets (table_mode =
// "sets"): the jump to sesame_input first, then the admin's own policy.
const ownChain = `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		jump sesame_input
		iif "lo" accept
		ct state established,related accept
		tcp dport 2222 accept
	}
}
`

// TestSetsMode: a hand-written nftables.conf (flush ruleset, the sets and
// chain that `sesame check --ruleset` prints, its own input chain that
// jumps there) and the daemon in sets mode. A knock opens; nft -f of the
// same file drops the grant and the knock works again; a bare flush
// ruleset makes sesame put its sets back, never a chain; sesame down
// removes only its sets.
func TestSetsMode(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	Listen(t, tp.Server, 22)
	Listen(t, tp.Server, 2222)
	cfg := WriteConfig(t, strings.Replace(config("reject", sshDoor("30s", "5s")), `table = "sesame"`, `table = "filter"
table_mode = "sets"`, 1))
	conf := "flush ruleset\n" + tp.Server.Exec(t, SesameBin, "check", "--ruleset", "-c", cfg) + ownChain
	loadRuleset(t, tp.Server, conf)
	chains := func() string {
		return tp.Server.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", "input") +
			tp.Server.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", "sesame_input")
	}
	before := chains()

	e := &env{Topo: tp, D: StartDaemonFile(t, tp.Server, cfg)}
	if out, err := tp.Server.Try(SesameBin, "doctor", "-c", cfg); err != nil {
		t.Errorf("doctor: exit %d:\n%s\nwant 0: the sets are used", exitCode(err), out)
	}
	mustRefuse(t, e.Client, ServerClient4, 22)
	mustConnect(t, e.Client, ServerClient4, 2222) // the admin's own accept
	knock(t, e.Client, ServerClient4, seqSSH...)
	waitFilterGrant(t, tp.Server)
	mustConnect(t, e.Client, ServerClient4, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)
	if after := chains(); after != before {
		t.Errorf("chains changed under sesame:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// nft -f with flush ruleset: the grant is gone, the knock works again.
	loadRuleset(t, tp.Server, conf)
	if g := filterGrants(t, tp.Server); len(g) != 0 {
		t.Errorf("grants after nft -f: %v, want none", g)
	}
	mustRefuse(t, e.Client, ServerClient4, 22)
	knock(t, e.Client, ServerClient4, seqSSH...)
	waitFilterGrant(t, tp.Server)
	mustConnect(t, e.Client, ServerClient4, 22)

	// A bare flush: sesame puts its sets back in a table of that name, and
	// no chain.
	tp.Server.Exec(t, "nft", "flush", "ruleset")
	if !Poll(5*time.Second, func() bool {
		out, err := tp.Server.Try("nft", "list", "set", "inet", "filter", "guarded")
		return err == nil && strings.Contains(out, "tcp . 22")
	}) {
		t.Fatalf("sets not restored after flush ruleset:\n%s", tp.Server.Exec(t, "nft", "list", "ruleset"))
	}
	if out := tp.Server.Exec(t, "nft", "list", "table", "inet", "filter"); strings.Contains(out, "chain") {
		t.Errorf("sesame added a chain:\n%s", out)
	}
	loadRuleset(t, tp.Server, conf)
	knock(t, e.Client, ServerClient4, seqSSH...)
	waitFilterGrant(t, tp.Server)
	mustConnect(t, e.Client, ServerClient4, 22)

	// down: only sesame's sets, once the admin's rules no longer use them.
	if err := e.D.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := tp.Server.Try(SesameBin, "down", "-c", cfg, "--yes"); err == nil || !strings.Contains(out, "still use them") {
		t.Errorf("down while the rules use the sets: exit %d, %q; want a refusal", exitCode(err), out)
	}
	tp.Server.Exec(t, "nft", "flush", "chain", "inet", "filter", "input")
	tp.Server.Exec(t, "nft", "delete", "chain", "inet", "filter", "sesame_input")
	tp.Server.Exec(t, SesameBin, "down", "-c", cfg, "--yes")
	out := tp.Server.Exec(t, "nft", "list", "table", "inet", "filter")
	if strings.Contains(out, "set ") || !strings.Contains(out, "chain input") {
		t.Errorf("after down:\n%s\nwant the table and its chain, no set", out)
	}
}

// filterGrants lists the IPv4 grants of door ssh in table inet filter.
func filterGrants(t *testing.T, ns *nstest.NS) []Element {
	t.Helper()
	var out []Element
	for _, set := range []string{"pend4_ssh", "open4_ssh", "manual4_ssh"} {
		els, err := NftSetIn(ns, "filter", set)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, els...)
	}
	return out
}

// waitFilterGrant waits up to 5s for Client4's grant of 22/tcp in table
// inet filter.
func waitFilterGrant(t *testing.T, ns *nstest.NS) {
	t.Helper()
	if !Poll(5*time.Second, func() bool {
		_, ok := Find(filterGrants(t, ns), Client4, "tcp", 22)
		return ok
	}) {
		t.Fatalf("no grant of 22/tcp for %s in table inet filter within 5s", Client4)
	}
}

// TestSetsModeForward: sets mode with a forward door. The admin's
// nftables.conf pastes what `sesame check --ruleset` prints (the sets,
// sesame_input and sesame_forward), jumps to sesame_forward first from
// its own forward chain (policy accept: only sesame closes the port) and
// DNATs 8081 to a backend. The DNATed port is closed before the knock,
// open for the knocker only, closed after expiry; the admin's chains are
// never changed, and the doctor finds the jumps.
func TestSetsModeForward(t *testing.T) {
	t.Parallel()
	ft := newFwdTopo(t)
	Listen(t, ft.B1, 81)
	cfg := WriteConfig(t, "table = \"filter\"\ntable_mode = \"sets\"\n"+fwdConfig(`"8081/tcp"`))
	paste := ft.Server.Exec(t, SesameBin, "check", "--ruleset", "-c", cfg)
	if !strings.Contains(paste, "chain sesame_forward {") || !strings.Contains(paste, "#\tjump sesame_forward") {
		t.Fatalf("check --ruleset lacks sesame_forward and its jump:\n%s", paste)
	}
	loadRuleset(t, ft.Server, "flush ruleset\n"+paste+`table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		jump sesame_input
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		jump sesame_forward
		ct state established,related accept
	}
}
table ip router {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8081 dnat to 203.0.113.10:81
	}
}
`)
	chains := func() string {
		var b strings.Builder
		for _, c := range []string{"input", "forward", "sesame_input", "sesame_forward"} {
			b.WriteString(ft.Server.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", c))
		}
		return b.String()
	}
	before := chains()
	d := StartDaemonFile(t, ft.Server, cfg)
	if out, err := ft.Server.Try(SesameBin, "doctor", "-c", cfg); err != nil {
		t.Errorf("doctor: exit %d:\n%s\nwant 0: the sets are used", exitCode(err), out)
	}
	reach(t, "before the knock, client", ft.Client, ServerClient4, 8081, false)
	reach(t, "before the knock, stranger", ft.Stranger, ServerStranger4, 8081, false)
	reach(t, "container to container", ft.B2, backend1, 81, true)

	knockApp(t, ft, d)
	reach(t, "forward grant, client", ft.Client, ServerClient4, 8081, true)
	reach(t, "forward grant, stranger", ft.Stranger, ServerStranger4, 8081, false)
	if !Poll(6*time.Second, func() bool {
		var n int
		for _, s := range []string{"fwd4_app", "fpend4_app"} {
			if strings.Contains(ft.Server.Exec(t, "nft", "list", "set", "inet", "filter", s), "elements") {
				n++
			}
		}
		return n == 0
	}) {
		t.Fatal("forward grants did not expire")
	}
	reach(t, "after expiry, client", ft.Client, ServerClient4, 8081, false)
	if after := chains(); after != before {
		t.Errorf("chains changed under sesame:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

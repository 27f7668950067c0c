package nft

import (
	"errors"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

func setsPolicy() *policy.Policy {
	p := twoDoors(true)
	p.Table, p.TableMode = "filter", policy.TableSets
	return p
}

// TestRulesetSetsMode: in sets mode the ruleset to paste marks every set,
// and its chain hooks nothing and returns what is not guarded first (an
// accept there would end the admin's base chain for every port).
func TestRulesetSetsMode(t *testing.T) {
	t.Parallel()
	out := Ruleset(setsPolicy())
	if strings.Contains(out, "type filter hook") || strings.Contains(out, "chain input") {
		t.Errorf("sets mode ruleset has a base chain:\n%s", out)
	}
	if n, c := strings.Count(out, "\tset "), strings.Count(out, `comment "managed by sesame"`); n == 0 || n != c {
		t.Errorf("%d sets, %d marked:\n%s", n, c, out)
	}
	body := out[strings.Index(out, "chain "+SetsChain+" {"):]
	lines := strings.Split(body, "\n")
	if lines[1] != "\t\tmeta l4proto . th dport != @guarded return" || !strings.Contains(out, "jump "+SetsChain) {
		t.Errorf("chain %s starts with %q, want the return of what is not guarded; and the jump to add:\n%s", SetsChain, lines[1], out)
	}
}

// TestEnsureSetsMode: Ensure in sets mode adds only the sets to the
// admin's table and leaves its chain alone; it refuses a same-named set
// without the marker; Delete removes only the sets, never the table.
func TestEnsureSetsMode(t *testing.T) {
	ns := nstest.New(t, "nft")
	// The admin's own set with a name like one of sesame's (a door "web"
	// that is not in the config): sesame must not delete it as a door
	// that is gone.
	admin := "table inet filter {\n\tset open4_web {\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t\tflags timeout\n\t}\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 80 accept\n\t}\n}\n"
	nftLoad(t, ns, admin)
	before := ns.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", "input")
	tbl, err := New("filter", WithNetNS(ns.FD()), SetsOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	mustEnsure(t, tbl, setsPolicy())
	mustEnsure(t, tbl, setsPolicy()) // again: nothing changes
	if after := ns.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", "input"); after != before {
		t.Errorf("chain changed:\n%s\nwas\n%s", after, before)
	}
	out := ns.Exec(t, "nft", "list", "table", "inet", "filter")
	if strings.Contains(out, SetsChain) || !strings.Contains(out, "set open4_ssh") || !strings.Contains(out, "set guarded") || !strings.Contains(out, "set open4_web") {
		t.Errorf("table after Ensure:\n%s\nwant the sets, no chain of sesame's", out)
	}
	if d, err := tbl.Verify(); err != nil || d.What != "" {
		t.Errorf("Verify: %v %v, want no drift", d, err)
	}
	if err := tbl.Delete(); err != nil {
		t.Fatal(err)
	}
	if out := ns.Exec(t, "nft", "list", "table", "inet", "filter"); strings.Count(out, "set ") != 1 || !strings.Contains(out, "set open4_web") || !strings.Contains(out, "tcp dport 80 accept") {
		t.Errorf("after Delete:\n%s\nwant the admin's table and set without sesame's sets", out)
	}

	// A set of sesame's name that is not sesame's.
	ns.Exec(t, "nft", "add", "set", "inet", "filter", "guarded", "{ type inet_proto . inet_service; }")
	if err := tbl.Ensure(setsPolicy()); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Ensure beside a foreign set guarded: %v, want ErrNotOurs", err)
	}
	if err := tbl.Delete(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Delete with only a foreign set: %v, want ErrNotOurs", err)
	}
}

func setsForwardPolicy() *policy.Policy {
	p := forwardPolicy(true, policy.ClosedDrop)
	p.Table, p.TableMode = "filter", policy.TableSets
	return p
}

// TestRulesetSetsModeForward: with forward doors, sets mode prints a
// second hook-less chain, sesame_forward, and its jump. Only forward
// targets get a verdict there: what does not enter on an outside
// interface returns (an accept would end the admin's forward chain for
// all of it), established connections are accepted per target, and what
// is no target falls off the end.
func TestRulesetSetsModeForward(t *testing.T) {
	t.Parallel()
	out := Ruleset(setsForwardPolicy())
	if strings.Contains(out, "type filter hook") || strings.Contains(out, "chain forward") {
		t.Errorf("sets mode ruleset has a base chain:\n%s", out)
	}
	if n, c := strings.Count(out, "\tset "), strings.Count(out, `comment "managed by sesame"`); n == 0 || n != c || !strings.Contains(out, "\tset outside {") || !strings.Contains(out, "\tset fpend4_ssh {") {
		t.Errorf("%d sets, %d marked, want the forward sets among them:\n%s", n, c, out)
	}
	i := strings.Index(out, "chain "+SetsForwardChain+" {")
	if i < 0 || !strings.Contains(out, "#\tjump "+SetsChain+"\n") || !strings.Contains(out, "#\tjump "+SetsForwardChain+"\n") {
		t.Fatalf("want chain %s and both jumps:\n%s", SetsForwardChain, out)
	}
	body := out[i : i+strings.Index(out[i:], "\t}\n")]
	lines := strings.Split(body, "\n")
	if lines[1] != "\t\tiifname != @outside return" {
		t.Errorf("chain %s starts with %q, want the return of what is not from outside", SetsForwardChain, lines[1])
	}
	for _, l := range lines[1:] {
		if strings.HasSuffix(l, "accept") && !strings.Contains(l, "ct original proto-dst") {
			t.Errorf("chain %s accepts beyond its targets: %q", SetsForwardChain, l)
		}
	}
	if !strings.Contains(body, "\t\tct state established,related ct status dnat meta l4proto tcp ct original proto-dst 8080 accept\n") {
		t.Errorf("no per-target accept of established connections:\n%s", body)
	}
}

// TestEnsureSetsModeForward: the sets and chains printed for sets mode
// with forward doors load with nft -f into the admin's table, beside its
// own base chains (one named forward) that jump to them; Ensure then only
// adds the sets (here: after they were deleted, and as they are), never a
// chain, and never deletes the admin's chain forward, even when the
// config has no forward door any more.
func TestEnsureSetsModeForward(t *testing.T) {
	ns := nstest.New(t, "nft")
	p := setsForwardPolicy()
	paste := strings.Replace(Ruleset(p), "\n}\n",
		"\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tjump "+SetsChain+
			"\n\t\tct state established,related accept\n\t}\n"+
			"\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tjump "+SetsForwardChain+
			"\n\t\tct state established,related accept\n\t}\n}\n", 1)
	nftLoad(t, ns, paste)
	chains := func() string {
		var b strings.Builder
		for _, c := range []string{"input", "forward", SetsChain, SetsForwardChain} {
			b.WriteString(ns.Exec(t, "nft", "-a", "list", "chain", "inet", "filter", c))
		}
		return b.String()
	}
	before := chains()
	tbl, err := New("filter", WithNetNS(ns.FD()), SetsOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	mustEnsure(t, tbl, p) // the pasted sets, marked: kept
	if d, err := tbl.Verify(); err != nil || d.What != "" {
		t.Errorf("Verify: %v %v, want no drift", d, err)
	}
	if after := chains(); after != before {
		t.Errorf("chains changed:\n%s\nwere\n%s", after, before)
	}

	// The sets alone, in a table with only the admin's chain forward.
	ns.Exec(t, "nft", "delete", "table", "inet", "filter")
	nftLoad(t, ns, "table inet filter {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\ttcp dport 80 accept\n\t}\n}\n")
	mustEnsure(t, tbl, p)
	out := ns.Exec(t, "nft", "list", "table", "inet", "filter")
	for _, want := range []string{"set outside", "set fwd4_ssh", "set fpend6_ssh", "set fmanual4_app", "set open4_ssh", "chain forward", "tcp dport 80 accept"} {
		if !strings.Contains(out, want) {
			t.Errorf("table after Ensure lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "chain ") != 1 {
		t.Errorf("Ensure added a chain:\n%s", out)
	}
	// No forward door any more: the forward sets go, the admin's chain stays.
	mustEnsure(t, tbl, setsPolicy())
	out = ns.Exec(t, "nft", "list", "table", "inet", "filter")
	if !strings.Contains(out, "chain forward") || strings.Contains(out, "set fwd4_ssh") || strings.Contains(out, "set outside") {
		t.Errorf("table after Ensure without forward doors:\n%s\nwant the admin's chain forward, no forward sets", out)
	}
}

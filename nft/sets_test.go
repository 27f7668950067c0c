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

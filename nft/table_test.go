package nft

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// withoutDestroy makes a Table behave as on a kernel without
// NFT_MSG_DESTROYSETELEM (Debian 12's 6.1), whatever the kernel knows.
func withoutDestroy() Option { return func(o *options) { o.noDestroy = true } }

// modes are the two element-deletion paths, so each test covers both.
var modes = []struct {
	name string
	opts []Option
}{{"destroy", nil}, {"delete", []Option{withoutDestroy()}}}

func newTable(t testing.TB, ns *nstest.NS, opts ...Option) *Table {
	t.Helper()
	tbl, err := New("sesame", append([]Option{WithNetNS(ns.FD())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func mustEnsure(t testing.TB, tbl *Table, p *policy.Policy) {
	t.Helper()
	if err := tbl.Ensure(p); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

// nftLoad feeds text to nft -f - inside ns.
func nftLoad(t *testing.T, ns *nstest.NS, text string, args ...string) {
	t.Helper()
	cmd := ns.Command("nft", append(args, "-f", "-")...)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft %v -f - : %v: %s\ninput:\n%s", args, err, out, text)
	}
}

// kernelTable returns `nft -j list table inet sesame` without handles and
// metainfo, set elements sorted; dropGrants also drops the grant elements.
func kernelTable(t *testing.T, ns *nstest.NS, dropGrants bool) []any {
	t.Helper()
	var doc struct{ Nftables []map[string]any }
	if err := json.Unmarshal([]byte(ns.Exec(t, "nft", "-j", "list", "table", "inet", "sesame")), &doc); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, obj := range doc.Nftables {
		if _, ok := obj["metainfo"]; ok {
			continue
		}
		out = append(out, normalize(obj, dropGrants))
	}
	return out
}

func normalize(v any, dropGrants bool) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, x := range v {
			if k == "handle" {
				continue
			}
			m[k] = normalize(x, dropGrants)
		}
		if name, _ := m["name"].(string); dropGrants && name != setGuarded {
			delete(m, "elem")
		}
		if elems, ok := m["elem"].([]any); ok {
			slices.SortFunc(elems, func(a, b any) int {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				return strings.Compare(string(ja), string(jb))
			})
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x, dropGrants)
		}
		return out
	}
	return v
}

// TestEnsureMatchesRuleset: what Ensure installs is, to the kernel, what
// Ruleset renders: the same text from nft list, and the same JSON as the
// rendered text loaded with nft -f into another namespace.
func TestEnsureMatchesRuleset(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *policy.Policy
	}{
		{"drop", testPolicy(policy.ClosedDrop, ssh)},
		{"reject", testPolicy(policy.ClosedReject, wg, ssh, web)},
		{"confirm", confirmPolicy()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nsA, nsB := nstest.New(t, "nft"), nstest.New(t, "nft")
			mustEnsure(t, newTable(t, nsA), tc.p)
			// The kernel lists the guarded set's elements in hash order: the
			// JSON comparison below sorts them.
			if diff := cmp.Diff(noElements(Ruleset(tc.p)), noElements(nsA.Exec(t, "nft", "list", "table", "inet", "sesame"))); diff != "" {
				t.Errorf("nft list table vs Ruleset (-want +got):\n%s", diff)
			}
			nftLoad(t, nsB, Ruleset(tc.p), "-c")
			nftLoad(t, nsB, Ruleset(tc.p))
			if diff := cmp.Diff(kernelTable(t, nsB, false), kernelTable(t, nsA, false)); diff != "" {
				t.Errorf("kernel view after Ensure vs Ruleset loaded by nft (-nft +Ensure):\n%s", diff)
			}
		})
	}
}

// noElements drops the elements of sets from nft's text.
func noElements(s string) string {
	return regexp.MustCompile(`(?s)elements = \{[^}]*\}`).ReplaceAllString(s, "elements = {...}")
}

// confirmPolicy has every kind of rule: a door with confirm that opens tcp
// and udp, whose name uses every character a door name may have, with an
// open_for that nft writes in two units, and a TOTP door.
func confirmPolicy() *policy.Policy {
	p := twoDoors(true)
	d := &p.Doors[0]
	d.Name = "Adm-1.x_Z"
	d.Open = append(d.Open, policy.PortProto{Port: 53, Proto: policy.UDP})
	d.OpenFor = 90 * time.Minute
	p.Closed = policy.ClosedReject
	return p
}

func TestEnsureKeepsGrants(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	a := netip.MustParseAddr("198.51.100.2")
	b := netip.MustParseAddr("2001:db8::2")
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	if err := tbl.Apply([]Grant{
		{Src: a, Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour},
		{Src: b, Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour},
	}, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"198.51.100.2 22/tcp ssh", "2001:db8::2 22/tcp ssh"}

	changed := testPolicy(policy.ClosedReject, web, wg)
	for _, p := range []*policy.Policy{testPolicy(policy.ClosedDrop, ssh), changed} {
		mustEnsure(t, tbl, p)
		if diff := cmp.Diff(want, listed(t, tbl)); diff != "" {
			t.Errorf("grants after Ensure(%s) (-want +got):\n%s", p.Closed, diff)
		}
	}
	ref := nstest.New(t, "nft")
	nftLoad(t, ref, Ruleset(changed))
	if diff := cmp.Diff(kernelTable(t, ref, true), kernelTable(t, ns, true)); diff != "" {
		t.Errorf("table after Ensure with a changed policy (-want +got):\n%s", diff)
	}
}

// listed returns "addr port door" for each grant, sorted.
func listed(t *testing.T, tbl *Table) []string {
	t.Helper()
	els, err := tbl.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, e := range els {
		out = append(out, fmt.Sprintf("%s %s %s", e.Addr, e.Port, e.Door))
	}
	slices.Sort(out)
	return out
}

func TestErrNotOurs(t *testing.T) {
	ns := nstest.New(t, "nft")
	ns.Exec(t, "nft", "add", "table", "inet", "sesame")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh)) // empty: taken

	ns2 := nstest.New(t, "nft")
	ns2.Exec(t, "nft", "add", "table", "inet", "sesame")
	ns2.Exec(t, "nft", "add", "chain", "inet", "sesame", "foo")
	err := newTable(t, ns2).Ensure(testPolicy(policy.ClosedDrop, ssh))
	if !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Ensure on a foreign table: %v, want ErrNotOurs", err)
	}
	t.Logf("message: %v", err)
	if out := ns2.Exec(t, "nft", "list", "table", "inet", "sesame"); strings.Contains(out, "guarded") {
		t.Errorf("foreign table was changed:\n%s", out)
	}
}

// Delete removes only a table that carries sesame's marker: not a foreign
// table, not even an empty one (Ensure may take that over, Delete may not).
func TestDeleteOnlyOurs(t *testing.T) {
	ns := nstest.New(t, "nft")
	ns.Exec(t, "nft", "add", "table", "inet", "sesame")
	ns.Exec(t, "nft", "add", "chain", "inet", "sesame", "foo")
	if err := newTable(t, ns).Delete(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Delete of a foreign table: %v, want ErrNotOurs", err)
	}
	ns.Exec(t, "nft", "add", "table", "inet", "empty")
	other, err := New("empty", WithNetNS(ns.FD()))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Delete of a foreign empty table: %v, want ErrNotOurs", err)
	}
	ns.Exec(t, "nft", "list", "table", "inet", "sesame") // both still there
	ns.Exec(t, "nft", "list", "table", "inet", "empty")

	ns2 := nstest.New(t, "nft")
	tbl := newTable(t, ns2)
	if err := tbl.Delete(); !errors.Is(err, ErrNoTable) {
		t.Errorf("Delete with no table: %v, want ErrNoTable", err)
	}
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	if err := tbl.Delete(); err != nil {
		t.Errorf("Delete of sesame's own table: %v", err)
	}
	if out, err := ns2.Try("nft", "list", "table", "inet", "sesame"); err == nil {
		t.Errorf("table still there after Delete:\n%s", out)
	}
}

func TestGrantShowsInKernel(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	if err := tbl.Grant(netip.MustParseAddr("198.51.100.2"), "ssh", Open, []policy.PortProto{ssh, wg}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct {
						Val     struct{ Concat []any }
						Timeout float64
						Comment string
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(ns.Exec(t, "nft", "-j", "list", "set", "inet", "sesame", "open4_ssh")), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			got = append(got, fmt.Sprintf("%v timeout=%v comment=%s", e.Elem.Val.Concat, e.Elem.Timeout, e.Elem.Comment))
		}
	}
	slices.Sort(got)
	want := []string{
		"[198.51.100.2 tcp 22] timeout=30 comment=ssh",
		"[198.51.100.2 udp 51820] timeout=30 comment=ssh",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nft -j list set open4_ssh (-want +got):\n%s", diff)
	}
	els, err := tbl.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range els {
		if e.Timeout != 30*time.Second || e.Expires <= 25*time.Second || e.Expires > 30*time.Second {
			t.Errorf("List: %+v: want timeout 30s and expires in (25s, 30s]", e)
		}
	}
}

package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

var (
	hostPort = policy.Target{PortProto: policy.PortProto{Port: 8080, Proto: policy.TCP}}
	routed4  = policy.Target{Addr: netip.MustParseAddr("192.0.2.10"), PortProto: ssh}
	routed6  = policy.Target{Addr: netip.MustParseAddr("2001:db8:5::10"), PortProto: policy.PortProto{Port: 443, Proto: policy.UDP}}
)

// forwardPolicy is twoDoors with forward targets on door ssh (confirm as
// given) and a door "app" that only forwards, behind interfaces eth0 and
// veth-out.
func forwardPolicy(confirm bool, closed policy.Closed) *policy.Policy {
	p := twoDoors(confirm)
	p.Closed = closed
	p.Interfaces = []string{"eth0", "veth-out"}
	p.Doors[0].Forward = []policy.Target{hostPort, routed4, routed6}
	p.Doors = append(p.Doors, policy.Door{
		Name:      "app",
		Sequence:  []policy.PortProto{{Port: 7100, Proto: policy.TCP}},
		Forward:   []policy.Target{{PortProto: policy.PortProto{Port: 9000, Proto: policy.UDP}}},
		OpenFor:   time.Minute,
		MaxGrants: 16,
	})
	return p
}

func TestRulesetForward(t *testing.T) {
	t.Parallel()
	got := Ruleset(forwardPolicy(true, policy.ClosedReject))
	for _, want := range []string{
		"\tset outside {\n\t\ttype ifname\n\t\telements = { \"eth0\", \"veth-out\" }\n\t}\n",
		"\tset fwd4_ssh {\n\t\ttype ipv4_addr\n\t\tsize 16\n\t\tflags dynamic,timeout\n\t}\n",
		"\tset fpend6_ssh {\n\t\ttype ipv6_addr\n\t\tsize 16\n\t\tflags timeout\n\t}\n",
		"\tchain forward {\n\t\ttype filter hook forward priority filter - 5; policy accept;\n\t\tiifname != @outside accept\n",
		"\t\tct state established ct direction original ct status assured ct status dnat meta l4proto tcp ct original proto-dst 8080 ip saddr @fpend4_ssh update @fwd4_ssh { ip saddr timeout 1h }\n",
		"\t\tct original ip daddr 192.0.2.10 meta l4proto tcp ct original proto-dst 22 ip saddr @fwd4_ssh accept\n",
		"\t\tct state new ct original ip6 daddr 2001:db8:5::10 meta l4proto udp ct original proto-dst 443 ip6 saddr @fpend6_ssh accept\n",
		"\t\tct status dnat meta l4proto tcp ct original proto-dst 8080 reject with tcp reset\n",
		"\t\tct status dnat meta l4proto udp ct original proto-dst 9000 reject\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Ruleset lacks\n%s\nin\n%s", want, got)
		}
	}
	// A routed IPv4 target has no IPv6 rules, and a door without forward
	// has no forward sets.
	// A door with only forward targets has no local sets.
	if strings.Contains(got, "192.0.2.10 meta l4proto tcp ct original proto-dst 22 ip6") || strings.Contains(got, "fwd4_wg") || strings.Contains(got, "open4_app") {
		t.Errorf("Ruleset has rules or sets it should not:\n%s", got)
	}
	if strings.Contains(Ruleset(twoDoors(true)), "forward") {
		t.Errorf("a policy without forward targets has a forward chain:\n%s", Ruleset(twoDoors(true)))
	}
	noIf := forwardPolicy(false, policy.ClosedDrop)
	noIf.Interfaces = nil
	if got := Ruleset(noIf); strings.Contains(got, "outside") {
		t.Errorf("without interfaces every interface is outside (fail closed), got:\n%s", got)
	}
}

// TestEnsureMatchesRulesetForward: the forward chain that Ensure installs
// is, to the kernel, what Ruleset renders (see TestEnsureMatchesRuleset).
func TestEnsureMatchesRulesetForward(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *policy.Policy
	}{
		{"drop", forwardPolicy(false, policy.ClosedDrop)},
		{"confirm reject", forwardPolicy(true, policy.ClosedReject)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nsA, nsB := nstest.New(t, "nft"), nstest.New(t, "nft")
			mustEnsure(t, newTable(t, nsA), tc.p)
			if diff := cmp.Diff(noElements(Ruleset(tc.p)), noElements(nsA.Exec(t, "nft", "list", "table", "inet", "sesame"))); diff != "" {
				t.Errorf("nft list table vs Ruleset (-want +got):\n%s", diff)
			}
			nftLoad(t, nsB, Ruleset(tc.p))
			// nft compiles `ct original ip daddr A` to the ct key dst_ip,
			// which google/nftables cannot send (no direction for it);
			// Ensure sends what nft compiles for `meta nfproto ipv4 ct
			// original daddr A`, the same match, listed in the same words
			// (compared above) but named "daddr" in JSON.
			if diff := cmp.Diff(ctDaddr(kernelTable(t, nsB, false)), any(kernelTable(t, nsA, false))); diff != "" {
				t.Errorf("kernel view after Ensure vs Ruleset loaded by nft (-nft +Ensure):\n%s", diff)
			}
		})
	}
}

// TestForwardGrants: a grant with Forward lands in the door's local and
// forward sets in one Apply, a grant without it only in the local ones, a
// door with only forward targets needs no ports; revokes take the forward
// grants only when asked; the forward chain goes with the last target.
func TestForwardGrants(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, forwardPolicy(true, policy.ClosedDrop))
	a := netip.MustParseAddr("198.51.100.2")
	b := netip.MustParseAddr("2001:db8::2")
	c := netip.MustParseAddr("203.0.113.7")
	if err := tbl.Apply([]Grant{
		{Src: a, Door: "ssh", Kind: Pending, Ports: []policy.PortProto{ssh}, Forward: true, TTL: time.Minute},
		{Src: b, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{web}, Forward: true, TTL: time.Minute},
		{Src: c, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{web}, TTL: time.Minute},
		{Src: c, Door: "app", Kind: Open, Forward: true, TTL: time.Minute},
	}, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"forward manual ssh 2001:db8::2", "forward open app 203.0.113.7", "forward pending ssh 198.51.100.2",
		"manual ssh 2001:db8::2 443/tcp", "manual ssh 203.0.113.7 443/tcp", "pending ssh 198.51.100.2 22/tcp",
	}
	if diff := cmp.Diff(want, fwdKinds(t, tbl)); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
	// A close sequence's revoke (no manual) of a and b; a revoke that does
	// not say Forward leaves c's forward grant.
	if err := tbl.Apply(nil, []Revoke{
		{Src: a, Door: "ssh", Ports: []policy.PortProto{ssh}, Forward: true},
		{Src: b, Door: "ssh", Ports: []policy.PortProto{web}, Forward: true},
		{Src: c, Door: "app"},
	}); err != nil {
		t.Fatal(err)
	}
	want = []string{"forward manual ssh 2001:db8::2", "forward open app 203.0.113.7", "manual ssh 2001:db8::2 443/tcp", "manual ssh 203.0.113.7 443/tcp"}
	if diff := cmp.Diff(want, fwdKinds(t, tbl)); diff != "" {
		t.Errorf("grants after revokes (-want +got):\n%s", diff)
	}
	if err := tbl.Revoke(b, "ssh", []policy.PortProto{web}, true); err != nil {
		t.Fatal(err)
	}
	// A grant to a door without forward targets cannot ask for them.
	if err := tbl.Apply([]Grant{{Src: a, Door: "wg", Kind: Open, Ports: []policy.PortProto{wg}, Forward: true, TTL: time.Minute}}, nil); err == nil {
		t.Error("a forward grant of door wg (no forward sets) landed")
	}
	if drift, err := tbl.Verify(); err != nil || drift.What != "" {
		t.Errorf("Verify after grants: %+v, %v", drift, err)
	}
	ns.Exec(t, "nft", "flush", "chain", "inet", "sesame", "forward")
	if drift, err := tbl.Verify(); err != nil || !strings.Contains(drift.What, "chain forward") {
		t.Errorf("Verify after flushing the forward chain: %+v, %v", drift, err)
	}
	// Without forward targets the chain and the outside set go, the
	// local grants stay.
	mustEnsure(t, tbl, twoDoors(true))
	out := ns.Exec(t, "nft", "list", "table", "inet", "sesame")
	if strings.Contains(out, "forward") || strings.Contains(out, "outside") || strings.Contains(out, "fwd4_") {
		t.Errorf("forward chain or sets left:\n%s", out)
	}
	want = []string{"manual ssh 203.0.113.7 443/tcp"}
	if diff := cmp.Diff(want, fwdKinds(t, tbl)); diff != "" {
		t.Errorf("grants without forward (-want +got):\n%s", diff)
	}
	mustEnsure(t, tbl, forwardPolicy(false, policy.ClosedDrop))
	if drift, err := tbl.Verify(); err != nil || drift.What != "" {
		t.Errorf("Verify after forward is back: %+v, %v", drift, err)
	}
}

func fwdKinds(t *testing.T, tbl *Table) []string {
	t.Helper()
	els, err := tbl.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, e := range els {
		if e.Kind.Forward() {
			out = append(out, fmt.Sprintf("forward %s %s %s", e.Kind, e.Door, e.Addr))
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Kind, e.Door, e.Addr, e.Port))
	}
	slices.Sort(out)
	return out
}

// ctDaddr renames the ct keys "ip daddr" and "ip6 daddr" to "daddr" in a
// kernelTable.
func ctDaddr(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "key" && (x == "ip daddr" || x == "ip6 daddr") {
				if _, ok := v["dir"]; ok {
					v[k] = "daddr"
					continue
				}
			}
			v[k] = ctDaddr(x)
		}
	case []any:
		for i, x := range v {
			v[i] = ctDaddr(x)
		}
	}
	return v
}

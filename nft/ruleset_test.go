package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

// testPolicy has one static door "ssh" without confirm (grants go straight
// to its open sets) and the default max_grants.
func testPolicy(closed policy.Closed, open ...policy.PortProto) *policy.Policy {
	return &policy.Policy{
		Table:  "sesame",
		Closed: closed,
		Doors: []policy.Door{{
			Name:     "ssh",
			Sequence: []policy.PortProto{{Port: 7000, Proto: policy.TCP}},
			Open:     open,
			OpenFor:  30 * time.Second,
		}},
	}
}

// twoDoors has door "ssh" (22/tcp and 443/tcp; with confirm, for 10s) and
// a TOTP door "wg" (51820/udp), each with room for 16 grants per set.
func twoDoors(confirm bool) *policy.Policy {
	p := &policy.Policy{
		Table:  "sesame",
		Closed: policy.ClosedDrop,
		Doors: []policy.Door{{
			Name:      "ssh",
			Sequence:  []policy.PortProto{{Port: 7000, Proto: policy.TCP}},
			Open:      []policy.PortProto{ssh, web},
			OpenFor:   time.Hour,
			MaxGrants: 16,
		}, {
			Name:      "wg",
			TOTP:      &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Proto: policy.TCP},
			Open:      []policy.PortProto{wg},
			OpenFor:   time.Hour,
			MaxGrants: 16,
		}},
	}
	if confirm {
		p.Doors[0].Confirm, p.Doors[0].ConfirmWithin = true, 10*time.Second
	}
	return p
}

var (
	ssh = policy.PortProto{Port: 22, Proto: policy.TCP}
	wg  = policy.PortProto{Port: 51820, Proto: policy.UDP}
	web = policy.PortProto{Port: 443, Proto: policy.TCP}
)

const goldenDrop = `table inet sesame {
	set guarded {
		type inet_proto . inet_service
		comment "managed by sesame"
		elements = { tcp . 22 }
	}

	set open4_ssh {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set open6_ssh {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set manual4_ssh {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set manual6_ssh {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	chain input {
		type filter hook input priority filter - 5; policy accept;
		iif "lo" accept
		meta l4proto . th dport != @guarded accept
		ct state established,related accept
		ip saddr . meta l4proto . th dport @open4_ssh accept
		ip saddr . meta l4proto . th dport @manual4_ssh accept
		ip6 saddr . meta l4proto . th dport @open6_ssh accept
		ip6 saddr . meta l4proto . th dport @manual6_ssh accept
		drop
	}
}
`

const goldenReject = `table inet knock {
	set guarded {
		type inet_proto . inet_service
		comment "managed by sesame"
		elements = { tcp . 22,
			     tcp . 443,
			     udp . 51820 }
	}

	set open4_ssh {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set open6_ssh {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set manual4_ssh {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set manual6_ssh {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	chain input {
		type filter hook input priority filter - 5; policy accept;
		iif "lo" accept
		meta l4proto . th dport != @guarded accept
		ct state established,related accept
		ip saddr . meta l4proto . th dport @open4_ssh accept
		ip saddr . meta l4proto . th dport @manual4_ssh accept
		ip6 saddr . meta l4proto . th dport @open6_ssh accept
		ip6 saddr . meta l4proto . th dport @manual6_ssh accept
		meta l4proto tcp reject with tcp reset
		reject
	}
}
`

func TestRuleset(t *testing.T) {
	t.Parallel()
	reject := testPolicy(policy.ClosedReject, wg, ssh, web, ssh)
	reject.Table = "knock"
	noTable := testPolicy(policy.ClosedDrop, ssh)
	noTable.Table = ""
	tests := []struct {
		name string
		in   *policy.Policy
		want string
	}{
		{"drop", testPolicy(policy.ClosedDrop, ssh), goldenDrop},
		{"default table name", noTable, goldenDrop},
		{"reject, sorted guarded ports", reject, goldenReject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, Ruleset(tt.in)); diff != "" {
				t.Errorf("Ruleset (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		addr    netip.Addr
		pp      policy.PortProto
		wantLen int
		want    netip.Addr
	}{
		{"ipv4", netip.MustParseAddr("198.51.100.2"), ssh, 12, netip.MustParseAddr("198.51.100.2")},
		{"ipv6 udp high port", netip.MustParseAddr("2001:db8::7"), wg, 24, netip.MustParseAddr("2001:db8::7")},
		{"port 0", netip.MustParseAddr("192.0.2.1"), policy.PortProto{Proto: policy.UDP}, 12, netip.MustParseAddr("192.0.2.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := elemKey(tt.addr, tt.pp)
			if len(k) != tt.wantLen {
				t.Fatalf("key length %d, want %d", len(k), tt.wantLen)
			}
			a, pp, err := parseKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if a != tt.want || pp != tt.pp {
				t.Errorf("parseKey = %v %v, want %v %v", a, pp, tt.want, tt.pp)
			}
		})
	}
	if _, _, err := parseKey(make([]byte, 8)); err == nil {
		t.Error("parseKey of 8 bytes: want an error")
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	a4 := netip.MustParseAddr("198.51.100.2")
	mapped := netip.MustParseAddr("::ffff:198.51.100.3")
	a6 := netip.MustParseAddr("2001:db8::1")
	grants := []Grant{
		{Src: a4, Door: "ssh", Kind: Pending, Ports: []policy.PortProto{ssh, web}, TTL: time.Second},
		{Src: mapped, Door: "ssh", Kind: Pending, Ports: []policy.PortProto{ssh}, TTL: time.Second},
		{Src: a6, Door: "wg", Ports: []policy.PortProto{wg}, TTL: time.Second},
		{Src: a4, Door: "ssh", Kind: Pending, Ports: []policy.PortProto{web}, TTL: 2 * time.Second}, // later wins
		{Src: a4, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{ssh}, TTL: time.Hour},
		{Src: a4, Door: "nosuch", Ports: []policy.PortProto{ssh}, TTL: time.Hour},
	}
	revokes := []Revoke{
		{Src: a4, Door: "ssh", Ports: []policy.PortProto{ssh}},             // open and pending
		{Src: a6, Door: "wg", Ports: []policy.PortProto{wg}, Manual: true}, // open and manual (wg has no pending set)
	}
	sets := map[string]bool{}
	for _, sm := range buildModel(twoDoors(true)).sets {
		sets[sm.name] = true
	}
	errs := make([]error, len(grants))
	got := map[string][]string{}
	for _, sp := range plan(grants, revokes, func(s string) bool { return sets[s] }, errs) {
		var lines []string
		for _, e := range sp.dels {
			a, pp, _ := parseKey(e.key)
			lines = append(lines, "del "+a.String()+" "+pp.String())
		}
		for _, g := range sp.groups {
			for _, e := range g.adds {
				a, pp, _ := parseKey(e.key)
				lines = append(lines, fmt.Sprintf("add %v %s %s %s %s", g.grants, a, pp, e.comment, e.timeout))
			}
		}
		lines = append(lines, fmt.Sprintf("revokes %v", sp.revokes))
		got[sp.name] = lines
	}
	want := map[string][]string{
		"open4_ssh": {"del 198.51.100.2 22/tcp", "revokes [0]"},
		"pend4_ssh": {
			"del 198.51.100.2 22/tcp",
			"add [0 3] 198.51.100.2 22/tcp ssh 1s",
			"add [0 3] 198.51.100.2 443/tcp ssh 2s",
			"add [1] 198.51.100.3 22/tcp ssh 1s",
			"revokes [0]",
		},
		"open6_wg":    {"del 2001:db8::1 51820/udp", "add [2] 2001:db8::1 51820/udp wg 1s", "revokes [1]"},
		"manual6_wg":  {"del 2001:db8::1 51820/udp", "revokes [1]"},
		"manual4_ssh": {"add [4] 198.51.100.2 22/tcp ssh 1h0m0s", "revokes []"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	for i, e := range errs {
		if (e != nil) != (i == 5) {
			t.Errorf("grant %d: error %v; want one only for the door without sets", i, e)
		}
	}
	for _, bad := range []Grant{
		{Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Second},
		{Src: a4, Door: "ssh", TTL: 0},
		{Src: a4, TTL: time.Second, Door: strings.Repeat("d", maxComment+1)},
		{Src: a4, TTL: time.Second, Door: "no spaces"},
		{Src: a4, TTL: time.Second, Door: "ssh", Kind: 7},
	} {
		if err := checkGrant(&bad); err == nil {
			t.Errorf("checkGrant(%+v): want an error", bad)
		}
	}
}

package nft

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

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

var (
	ssh = policy.PortProto{Port: 22, Proto: policy.TCP}
	wg  = policy.PortProto{Port: 51820, Proto: policy.UDP}
	web = policy.PortProto{Port: 443, Proto: policy.TCP}
)

const goldenDrop = `table inet sesame {
	set grants4 {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set grants6 {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set guarded {
		type inet_proto . inet_service
		comment "managed by sesame"
		elements = { tcp . 22 }
	}

	chain input {
		type filter hook input priority filter - 5; policy accept;
		meta l4proto . th dport != @guarded accept
		ct state established,related accept
		ip saddr . meta l4proto . th dport @grants4 accept
		ip6 saddr . meta l4proto . th dport @grants6 accept
		drop
	}
}
`

const goldenReject = `table inet knock {
	set grants4 {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set grants6 {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set guarded {
		type inet_proto . inet_service
		comment "managed by sesame"
		elements = { tcp . 22,
			     tcp . 443,
			     udp . 51820 }
	}

	chain input {
		type filter hook input priority filter - 5; policy accept;
		meta l4proto . th dport != @guarded accept
		ct state established,related accept
		ip saddr . meta l4proto . th dport @grants4 accept
		ip6 saddr . meta l4proto . th dport @grants6 accept
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

func TestPlanOps(t *testing.T) {
	t.Parallel()
	a4 := netip.MustParseAddr("198.51.100.2")
	mapped := netip.MustParseAddr("::ffff:198.51.100.3")
	a6 := netip.MustParseAddr("2001:db8::1")
	ops, err := planOps([]Grant{
		{Src: a4, Door: "ssh", Ports: []policy.PortProto{ssh, web}, TTL: time.Second},
		{Src: mapped, Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Second},
		{Src: a6, Door: "wg", Ports: []policy.PortProto{wg}, TTL: time.Second},
		{Src: a4, Door: "web", Ports: []policy.PortProto{web}, TTL: 2 * time.Second}, // later wins
	}, []Revoke{{Src: a4, Ports: []policy.PortProto{ssh}}})
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ Adds, Dels []string }
	summary := func(o *setOps) got {
		var g got
		for _, e := range o.adds {
			a, pp, _ := parseKey(e.key)
			g.Adds = append(g.Adds, a.String()+" "+pp.String()+" "+e.comment+" "+e.timeout.String())
		}
		for _, e := range o.dels {
			a, pp, _ := parseKey(e.key)
			g.Dels = append(g.Dels, a.String()+" "+pp.String())
		}
		return g
	}
	want := map[string]got{
		setGrants4: {
			Adds: []string{"198.51.100.2 22/tcp ssh 1s", "198.51.100.2 443/tcp web 2s", "198.51.100.3 22/tcp ssh 1s"},
			Dels: []string{"198.51.100.2 22/tcp", "198.51.100.2 443/tcp", "198.51.100.3 22/tcp"},
		},
		setGrants6: {Adds: []string{"2001:db8::1 51820/udp wg 1s"}, Dels: []string{"2001:db8::1 51820/udp"}},
	}
	gotAll := map[string]got{setGrants4: summary(ops[setGrants4]), setGrants6: summary(ops[setGrants6])}
	if diff := cmp.Diff(want, gotAll); diff != "" {
		t.Errorf("planOps (-want +got):\n%s", diff)
	}
	for _, bad := range []Grant{
		{Ports: []policy.PortProto{ssh}, TTL: time.Second},
		{Src: a4, TTL: 0},
		{Src: a4, TTL: time.Second, Door: strings.Repeat("d", maxComment+1)},
	} {
		if _, err := planOps([]Grant{bad}, nil); err == nil {
			t.Errorf("planOps(%+v): want an error", bad)
		}
	}
}

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/internal/nstest"
)

func TestParseNftSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []Element
		wantErr bool
	}{
		{
			name: "v4 with timeout and comment",
			in:   `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "open4_ssh", "table": "sesame", "elem": [{"elem": {"val": {"concat": ["198.51.100.2", "tcp", 22]}, "timeout": 30, "expires": 29, "comment": "ssh"}}]}}]}`,
			want: []Element{{Set: "open4_ssh", Addr: Stranger4, Proto: "tcp", Port: 22, Timeout: 30 * time.Second, Expires: 29 * time.Second, Comment: "ssh"}},
		},
		{
			name: "v6 bare element, numeric proto",
			in:   `{"nftables": [{"set": {"name": "pend6_ssh", "elem": [{"concat": ["2001:db8::2", 17, 53]}]}}]}`,
			want: []Element{{Set: "pend6_ssh", Addr: netip.MustParseAddr("2001:db8::2"), Proto: "udp", Port: 53}},
		},
		{name: "empty set", in: `{"nftables": [{"set": {"name": "open4_ssh"}}]}`},
		{name: "guarded set skipped", in: `{"nftables": [{"set": {"name": "guarded", "type": ["inet_proto", "inet_service"], "elem": [{"concat": ["tcp", 22]}]}}]}`},
		{name: "no set", in: `{"nftables": [{"metainfo": {}}]}`, wantErr: true},
		{name: "bad address", in: `{"nftables": [{"set": {"elem": [{"concat": ["x", "tcp", 22]}]}}]}`, wantErr: true},
		{name: "not a concatenation", in: `{"nftables": [{"set": {"elem": ["198.51.100.2"]}}]}`, wantErr: true},
		{name: "not json", in: `table inet sesame {`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNftSet([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseNftSet error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseNftSet mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTopology checks the bare topology: with no firewall, the client and
// the stranger reach the server's listener over IPv4 and IPv6, and a port
// nobody listens on is refused.
func TestTopology(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	tp := NewTopo(t)
	Listen(t, tp.Server, 22)
	for _, c := range []struct {
		from *nstest.NS
		to   netip.Addr
	}{
		{tp.Client, ServerClient4}, {tp.Client, ServerClient6},
		{tp.Stranger, ServerStranger4}, {tp.Stranger, ServerStranger6},
	} {
		if err := Connect(c.from, c.to, 22, 3*time.Second); err != nil {
			t.Errorf("%s -> %s:22: %v", c.from.Name, c.to, err)
		}
	}
	if err := Connect(tp.Client, ServerClient4, 23, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %v, want connection refused", err)
	}
}

// TestNftSetHelper reads hand-made grant sets back through NftSet and
// Grants, and empties them with FlushGrants.
func TestNftSetHelper(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	ns := nstest.New(t, "set")
	ns.Exec(t, "nft", "add table inet sesame; "+
		"add set inet sesame open4_ssh { type ipv4_addr . inet_proto . inet_service; flags timeout; }; "+
		"add set inet sesame manual6_alt { type ipv6_addr . inet_proto . inet_service; flags timeout; }; "+
		"add set inet sesame guarded { type inet_proto . inet_service; elements = { tcp . 22 }; }")
	ns.Exec(t, "nft", `add element inet sesame open4_ssh { 198.51.100.2 . tcp . 22 timeout 30s comment "ssh", 192.0.2.2 . udp . 53 timeout 1h }`)
	ns.Exec(t, "nft", `add element inet sesame manual6_alt { 2001:db8:1::2 . tcp . 2222 timeout 60s comment "alt" }`)

	got4, err := NftSet(ns, "open4_ssh")
	if err != nil {
		t.Fatal(err)
	}
	got6, err := NftSet(ns, "manual6_alt")
	if err != nil {
		t.Fatal(err)
	}
	all, err := Grants(ns)
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for _, e := range all {
		where = append(where, e.Kind()+" "+e.Door()+" "+e.Addr.String())
	}
	slices.Sort(where)
	if want := []string{"manual alt 2001:db8:1::2", "open ssh 192.0.2.2", "open ssh 198.51.100.2"}; !slices.Equal(where, want) {
		t.Errorf("Grants: %v, want %v", where, want)
	}
	defer func() {
		if err := FlushGrants(ns); err != nil {
			t.Fatal(err)
		}
		if all, err := Grants(ns); err != nil || len(all) != 0 {
			t.Errorf("after FlushGrants: %v, %v; want none", all, err)
		}
	}()
	check := func(elems []Element, addr netip.Addr, proto string, port uint16, timeout time.Duration, comment string) {
		t.Helper()
		e, ok := Find(elems, addr, proto, port)
		if !ok {
			t.Errorf("no element %s . %s . %d in %v", addr, proto, port, elems)
			return
		}
		if e.Timeout != timeout || e.Comment != comment || e.Expires <= 0 || e.Expires > timeout {
			t.Errorf("element %v: want timeout %s, 0 < expires <= timeout, comment %q", e, timeout, comment)
		}
	}
	check(got4, Stranger4, "tcp", 22, 30*time.Second, "ssh")
	check(got4, Client4, "udp", 53, time.Hour, "")
	check(got6, Client6, "tcp", 2222, time.Minute, "alt")
	if len(got4) != 2 || len(got6) != 1 {
		t.Errorf("got %d and %d elements, want 2 and 1: %v %v", len(got4), len(got6), got4, got6)
	}
	if _, err := NftSet(ns, "nosuch"); err == nil {
		t.Errorf("NftSet of a missing set: no error")
	}
}

// nftCounter returns the packet count of a named counter in table inet t.
func nftCounter(t *testing.T, ns *nstest.NS, name string) uint64 {
	t.Helper()
	out := ns.Exec(t, "nft", "-j", "list", "counter", "inet", "t", name)
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse counter %s: %v: %s", name, err, out)
	}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			return o.Counter.Packets
		}
	}
	t.Fatalf("no counter %s in %s", name, out)
	return 0
}

// TestKnockPackets proves that `sesame knock` sends exactly one SYN per TCP
// port and one datagram per UDP port, over IPv4 and IPv6: the server counts
// them with nftables and drops them, so a client that retried (a blocking
// connect retransmits its SYN after 1s) would be counted twice within the
// observation window.
func TestKnockPackets(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	tp := NewTopo(t)
	ruleset := `table inet t {
	counter syn7000 {}
	counter udp8000 {}
	counter syn9000 {}
	counter other {}
	chain in {
		type filter hook input priority filter; policy accept;
		tcp dport 7000 tcp flags & (syn | ack) == syn counter name syn7000 drop
		udp dport 8000 counter name udp8000 drop
		tcp dport 9000 tcp flags & (syn | ack) == syn counter name syn9000 drop
		tcp dport { 7000, 9000 } counter name other
		udp dport { 7000, 9000 } counter name other
	}
}
`
	tp.Server.Exec(t, "nft", "-f", WriteConfig(t, ruleset))
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"ipv4", []string{"192.0.2.1", "7000", "8000:udp", "9000/tcp"},
			"hitting tcp 192.0.2.1:7000\nhitting udp 192.0.2.1:8000\nhitting tcp 192.0.2.1:9000\n"},
		{"ipv6", []string{"-6", "-d", "10", "2001:db8:1::1", "7000", "8000/udp", "9000"},
			"hitting tcp [2001:db8:1::1]:7000\nhitting udp [2001:db8:1::1]:8000\nhitting tcp [2001:db8:1::1]:9000\n"},
	} {
		before := map[string]uint64{}
		for _, n := range []string{"syn7000", "udp8000", "syn9000", "other"} {
			before[n] = nftCounter(t, tp.Server, n)
		}
		out := Knock(t, tp.Client, c.args...)
		if diff := cmp.Diff(c.want, out); diff != "" {
			t.Errorf("%s: knock -v output mismatch (-want +got):\n%s", c.name, diff)
		}
		want := map[string]uint64{"syn7000": 1, "udp8000": 1, "syn9000": 1, "other": 0}
		counts := func() map[string]uint64 {
			got := map[string]uint64{}
			for n, b := range before {
				got[n] = nftCounter(t, tp.Server, n) - b
			}
			return got
		}
		// Every packet arrives (bounded wait), and none follows within
		// 1.5s, longer than TCP's initial 1s SYN retransmission timeout.
		if !Poll(3*time.Second, func() bool { return cmp.Equal(want, counts()) }) {
			t.Fatalf("%s: packets seen %v, want %v", c.name, counts(), want)
		}
		time.Sleep(1500 * time.Millisecond)
		if diff := cmp.Diff(want, counts()); diff != "" {
			t.Errorf("%s: packets seen after 1.5s (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestKnockErrors checks the client's exit statuses from a namespace.
func TestKnockErrors(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	ns := nstest.New(t, "kerr")
	// No route to 192.0.2.1: a network error, exit 1, host named.
	out, err := KnockTry(ns, "192.0.2.1", "7000")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "192.0.2.1") {
		t.Errorf("knock with no route: exit %d, output %q; want 1 and the host named", code, out)
	}
	out, err = KnockTry(ns, "192.0.2.1", "70000")
	if code := exitCode(err); code != 2 || !strings.Contains(out, `bad port "70000"`) {
		t.Errorf("knock with a bad port: exit %d, output %q; want 2 and the port named", code, out)
	}
}

func exitCode(err error) int {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		panic(fmt.Sprintf("not an exit error: %v", err))
	}
	return 0
}

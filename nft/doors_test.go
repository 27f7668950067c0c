package nft

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// Attacker's tests for issue 11 item 2: one door's grants cannot starve
// another door or manual grants, and a full set fails only its own grants.

// spoofed returns the i-th address of 198.18.0.0/15.
func spoofed(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

// kinds lists "set addr port" for every grant, sorted.
func kinds(t *testing.T, tbl *Table) []string {
	t.Helper()
	els, err := tbl.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, e := range els {
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Kind, e.Door, e.Addr, e.Port))
	}
	slices.Sort(out)
	return out
}

// TestFullDoorFailsOnlyItsGrants: a door without confirm, its open set full
// of a flood's grants, refuses only its new grants (each reported), while
// the same Apply lands another door's grant, a manual grant of the same
// door, a refresh of a live grant and a revoke, for both kernel paths.
func TestFullDoorFailsOnlyItsGrants(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t, "nft")
			tbl := newTable(t, ns, m.opts...)
			mustEnsure(t, tbl, twoDoors(false))
			var flood []Grant
			for i := range 16 {
				flood = append(flood, Grant{Src: spoofed(i), Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour})
			}
			if err := tbl.Apply(flood, nil); err != nil {
				t.Fatalf("16 grants into a set of 16: %v", err)
			}
			victim := netip.MustParseAddr("192.0.2.2")
			grants := []Grant{
				{Src: spoofed(100), Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour},         // 0: no room
				{Src: victim, Door: "wg", Ports: []policy.PortProto{wg}, TTL: time.Hour},                 // 1: another door
				{Src: victim, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{ssh}, TTL: time.Hour}, // 2: manual
				{Src: spoofed(3), Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour},           // 3: refresh
				{Src: spoofed(101), Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour},         // 4: no room
				{Src: spoofed(102), Door: "ssh", Ports: []policy.PortProto{ssh, web}, TTL: time.Hour},    // 5: no room
			}
			err := tbl.Apply(grants, []Revoke{{Src: spoofed(7), Door: "ssh", Ports: []policy.PortProto{ssh}}})
			if !errors.Is(err, unix.ENFILE) {
				t.Fatalf("Apply: %v, want an ApplyError with ENFILE", err)
			}
			for i := range grants {
				if ge, full := GrantErr(err, i), i == 4 || i == 5; (ge != nil) != full {
					t.Errorf("grant %d (%s %s): error %v, want one: %v", i, grants[i].Door, grants[i].Src, ge, full)
				}
			}
			if re := RevokeErr(err, 0); re != nil {
				t.Errorf("revoke: %v", re)
			}
			got := kinds(t, tbl)
			for _, want := range []string{"open wg 192.0.2.2 51820/udp", "manual ssh 192.0.2.2 22/tcp", "open ssh 198.18.0.3 22/tcp", "open ssh 198.18.0.100 22/tcp"} {
				if !slices.Contains(got, want) {
					t.Errorf("missing %q in %v", want, got)
				}
			}
			for _, gone := range []string{"open ssh 198.18.0.7 22/tcp", "open ssh 198.18.0.101 22/tcp", "open ssh 198.18.0.102 443/tcp"} {
				if slices.Contains(got, gone) {
					t.Errorf("%q still there", gone)
				}
			}
		})
	}
}

// TestPendingChurns: a flood of pending grants (spoofed knocks that
// completed a static door's sequence) never fails for want of room: the
// oldest pending grants go first, so a real knock in the middle of it stays
// for about max_grants newer knocks, and the door's open and manual grants
// and other doors are untouched.
func TestPendingChurns(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t, "nft")
			tbl := newTable(t, ns, m.opts...)
			mustEnsure(t, tbl, twoDoors(true))
			victim := netip.MustParseAddr("192.0.2.2")
			if err := tbl.Apply([]Grant{
				{Src: victim, Door: "ssh", Kind: Open, Ports: []policy.PortProto{ssh}, TTL: time.Hour},
				{Src: victim, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{web}, TTL: time.Hour},
				{Src: victim, Door: "wg", Kind: Open, Ports: []policy.PortProto{wg}, TTL: time.Hour},
			}, nil); err != nil {
				t.Fatal(err)
			}
			legit := netip.MustParseAddr("192.0.2.77")
			n := 0
			knock := func(batch int) {
				t.Helper()
				var gs []Grant
				for range batch {
					gs = append(gs, Grant{Src: spoofed(n), Door: "ssh", Kind: Pending, Ports: []policy.PortProto{ssh, web}, TTL: time.Minute})
					n++
				}
				if err := tbl.Apply(gs, nil); err != nil {
					t.Fatalf("pending grants %d..%d: %v", n-batch, n-1, err)
				}
			}
			knock(5)
			if err := tbl.Grant(legit, "ssh", Pending, []policy.PortProto{ssh, web}, time.Minute); err != nil {
				t.Fatal(err)
			}
			// The set holds 16 elements, 2 per knock: the real knock
			// survives 7 newer knocks, in batches of any size.
			knock(1)
			knock(3)
			knock(3)
			got := kinds(t, tbl)
			if !slices.Contains(got, "pending ssh 192.0.2.77 22/tcp") {
				t.Errorf("the real knock is gone after 7 newer ones: %v", got)
			}
			knock(12) // more than the set holds in one batch
			knock(40)
			got = kinds(t, tbl)
			pending := 0
			for _, g := range got {
				if strings.HasPrefix(g, "pending") {
					pending++
				}
			}
			if pending != 16 {
				t.Errorf("%d pending elements, want the set full with 16: %v", pending, got)
			}
			if slices.Contains(got, "pending ssh 192.0.2.77 22/tcp") {
				t.Errorf("the real knock outlived %d newer ones in a set of 8 knocks", n)
			}
			last := spoofed(n - 1).String()
			if !slices.Contains(got, "pending ssh "+last+" 22/tcp") {
				t.Errorf("the newest knock (%s) is missing: %v", last, got)
			}
			for _, want := range []string{"open ssh 192.0.2.2 22/tcp", "manual ssh 192.0.2.2 443/tcp", "open wg 192.0.2.2 51820/udp"} {
				if !slices.Contains(got, want) {
					t.Errorf("the flood of pending grants took %q", want)
				}
			}
			if ev, _ := tbl.PendingEvicted(); ev == 0 {
				t.Error("PendingEvicted = 0")
			}
		})
	}
}

// TestPendingFlushedWhenFullOfUnknown: pending elements that this Table did
// not write (a restart) fill the set: the set is flushed, logged, and the
// new pending grant lands.
func TestPendingFlushedWhenFullOfUnknown(t *testing.T) {
	ns := nstest.New(t, "nft")
	var logs bytes.Buffer
	tbl := newTable(t, ns, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	mustEnsure(t, tbl, twoDoors(true))
	var elems []string
	for i := range 8 {
		a := spoofed(i).String()
		elems = append(elems, a+" . tcp . 22 timeout 1h", a+" . tcp . 443 timeout 1h")
	}
	ns.Exec(t, "nft", "add element inet sesame pend4_ssh { "+strings.Join(elems, ", ")+" }")
	if err := tbl.Grant(netip.MustParseAddr("192.0.2.2"), "ssh", Pending, []policy.PortProto{ssh}, time.Minute); err != nil {
		t.Fatalf("pending grant into a set full of unknown elements: %v", err)
	}
	if diff := cmp.Diff([]string{"pending ssh 192.0.2.2 22/tcp"}, kinds(t, tbl)); diff != "" {
		t.Errorf("after the flush (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "flushed") {
		t.Errorf("no log line for the flush:\n%s", logs.String())
	}
	if _, fl := tbl.PendingEvicted(); fl != 1 {
		t.Errorf("flushes = %d, want 1", fl)
	}
}

// TestCloseSparesManual: a close sequence (Revoke without Manual) takes a
// door's open and pending grants of the address but not its manual grant,
// nor another door's grant; `sesame revoke` (Manual) takes all of the
// door's.
func TestCloseSparesManual(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, twoDoors(true))
	victim := netip.MustParseAddr("192.0.2.2")
	if err := tbl.Apply([]Grant{
		{Src: victim, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{ssh}, TTL: 720 * time.Hour},
		{Src: victim, Door: "ssh", Kind: Open, Ports: []policy.PortProto{ssh, web}, TTL: time.Hour},
		{Src: victim, Door: "ssh", Kind: Pending, Ports: []policy.PortProto{ssh}, TTL: time.Minute},
		{Src: victim, Door: "wg", Kind: Open, Ports: []policy.PortProto{wg}, TTL: time.Hour},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Revoke(victim, "ssh", []policy.PortProto{ssh, web}, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"manual ssh 192.0.2.2 22/tcp", "open wg 192.0.2.2 51820/udp"}
	if diff := cmp.Diff(want, kinds(t, tbl)); diff != "" {
		t.Errorf("after a close (-want +got):\n%s", diff)
	}
	if err := tbl.Revoke(victim, "ssh", []policy.PortProto{ssh, web}, true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:], kinds(t, tbl)); diff != "" {
		t.Errorf("after sesame revoke (-want +got):\n%s", diff)
	}
}

// TestKnockKeepsManualGrant: a knock's grant of the same address and port
// does not shorten a 720h manual grant.
func TestKnockKeepsManualGrant(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, twoDoors(false))
	victim := netip.MustParseAddr("192.0.2.2")
	if err := tbl.Grant(victim, "ssh", Manual, []policy.PortProto{ssh}, 720*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Grant(victim, "ssh", Open, []policy.PortProto{ssh}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	els, err := tbl.List()
	if err != nil {
		t.Fatal(err)
	}
	var manual bool
	for _, e := range els {
		if e.Kind == Manual {
			manual = true
			if e.Expires < 719*time.Hour {
				t.Errorf("manual grant expires in %s after a knock, want ~720h", e.Expires)
			}
		}
	}
	if !manual {
		t.Errorf("manual grant gone after a knock: %+v", els)
	}
}

// TestEnsureMovesLegacyGrants: a table of the older layout (one grants4
// and grants6 for every door) is rebuilt in place: live grants move into
// their door's open sets with their time left, grants of doors that are gone
// are dropped, and the old sets are deleted.
func TestEnsureMovesLegacyGrants(t *testing.T) {
	ns := nstest.New(t, "nft")
	nftLoad(t, ns, `table inet sesame {
	set grants4 {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
		elements = { 198.51.100.2 . tcp . 22 timeout 30s expires 20s comment "ssh",
			     198.51.100.3 . tcp . 22 timeout 2h comment "ssh",
			     198.51.100.4 . tcp . 22 timeout 1h comment "gone" }
	}
	set grants6 {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
		elements = { 2001:db8::2 . udp . 51820 timeout 1h comment "wg" }
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
`)
	var logs bytes.Buffer
	tbl := newTable(t, ns, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	p := twoDoors(true)
	mustEnsure(t, tbl, p)
	els, err := tbl.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Duration{}
	for _, e := range els {
		got[fmt.Sprintf("%s %s %s %s", e.Kind, e.Door, e.Addr, e.Port)] = e.Expires
	}
	for key, left := range map[string]time.Duration{
		"open ssh 198.51.100.2 22/tcp":  20 * time.Second,
		"open ssh 198.51.100.3 22/tcp":  2 * time.Hour,
		"open wg 2001:db8::2 51820/udp": time.Hour,
	} {
		if got[key] < left-5*time.Second || got[key] > left {
			t.Errorf("%s: expires in %s, want about %s (all: %v)", key, got[key], left, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("grants after the move: %v, want the 3 of doors that exist", got)
	}
	out := ns.Exec(t, "nft", "list", "table", "inet", "sesame")
	if strings.Contains(out, "grants4") || strings.Contains(out, "grants6") {
		t.Errorf("old sets still there:\n%s", out)
	}
	if !strings.Contains(logs.String(), "grants_moved=3") || !strings.Contains(logs.String(), "grants_dropped=1") {
		t.Errorf("log does not say what moved:\n%s", logs.String())
	}
	ref := nstest.New(t, "nft")
	nftLoad(t, ref, Ruleset(p))
	if diff := cmp.Diff(kernelTable(t, ref, true), kernelTable(t, ns, true)); diff != "" {
		t.Errorf("table after the move vs Ruleset (-want +got):\n%s", diff)
	}
}

// TestEnsureRebuildsChangedSets: max_grants and confirm change a set's
// size and flags, which the kernel cannot change in place; the sets are
// rebuilt with their grants, and a door that is gone takes its sets along.
func TestEnsureRebuildsChangedSets(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, twoDoors(false))
	victim := netip.MustParseAddr("192.0.2.2")
	if err := tbl.Apply([]Grant{
		{Src: victim, Door: "ssh", Kind: Open, Ports: []policy.PortProto{ssh}, TTL: time.Hour},
		{Src: victim, Door: "ssh", Kind: Manual, Ports: []policy.PortProto{web}, TTL: time.Hour},
		{Src: victim, Door: "wg", Kind: Open, Ports: []policy.PortProto{wg}, TTL: time.Hour},
	}, nil); err != nil {
		t.Fatal(err)
	}
	p := twoDoors(true)
	p.Doors[0].MaxGrants = 64
	p.Doors = p.Doors[:1]
	mustEnsure(t, tbl, p)
	want := []string{"manual ssh 192.0.2.2 443/tcp", "open ssh 192.0.2.2 22/tcp"}
	if diff := cmp.Diff(want, kinds(t, tbl)); diff != "" {
		t.Errorf("grants after the rebuild (-want +got):\n%s", diff)
	}
	ref := nstest.New(t, "nft")
	nftLoad(t, ref, Ruleset(p))
	if diff := cmp.Diff(kernelTable(t, ref, true), kernelTable(t, ns, true)); diff != "" {
		t.Errorf("table after the rebuild vs Ruleset (-want +got):\n%s", diff)
	}
	// The rebuilt pending set is tracked from scratch: it fills and churns.
	for i := range 40 {
		if err := tbl.Grant(spoofed(i), "ssh", Pending, []policy.PortProto{ssh}, time.Minute); err != nil {
			t.Fatalf("pending grant %d: %v", i, err)
		}
	}
}

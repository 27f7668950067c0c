package nft

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// find returns the grant for addr and port, or false.
func find(t *testing.T, tbl *Table, addr netip.Addr, pp policy.PortProto) (Element, bool) {
	t.Helper()
	els, err := tbl.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, e := range els {
		if e.Addr == addr && e.Port == pp {
			return e, true
		}
	}
	return Element{}, false
}

// waitFor polls cond every 50ms until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRegrantRestartsTimer(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t, "nft")
			tbl := newTable(t, ns, m.opts...)
			mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
			src := netip.MustParseAddr("198.51.100.2")
			if err := tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "grant timer runs down to 8.5s", func() bool {
				e, ok := find(t, tbl, src, ssh)
				if !ok {
					t.Fatal("grant missing")
				}
				return e.Expires <= 8500*time.Millisecond
			})
			if err := tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, 10*time.Second); err != nil {
				t.Fatalf("re-grant: %v", err)
			}
			e, ok := find(t, tbl, src, ssh)
			if !ok || e.Expires < 9500*time.Millisecond || e.Timeout != 10*time.Second {
				t.Errorf("after re-grant: %+v (found %v), want expires ≥ 9.5s of 10s", e, ok)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := nstest.New(t, "nft")
			tbl := newTable(t, ns, m.opts...)
			mustEnsure(t, tbl, twoDoors(false))
			a := netip.MustParseAddr("198.51.100.2")
			b := netip.MustParseAddr("2001:db8::9")
			if err := tbl.Grant(a, "ssh", Open, []policy.PortProto{ssh, web}, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := tbl.Revoke(a, "ssh", []policy.PortProto{web}, false); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if diff := cmp.Diff([]string{"198.51.100.2 22/tcp ssh"}, listed(t, tbl)); diff != "" {
				t.Errorf("after Revoke (-want +got):\n%s", diff)
			}
			// Missing elements (web again, b never granted) do not fail the
			// batch nor keep its other operations from applying.
			if err := tbl.Apply(
				[]Grant{{Src: b, Door: "wg", Ports: []policy.PortProto{wg}, TTL: time.Hour}},
				[]Revoke{{Src: a, Door: "ssh", Ports: []policy.PortProto{web, ssh}}, {Src: b, Door: "ssh", Ports: []policy.PortProto{ssh}, Manual: true}},
			); err != nil {
				t.Fatalf("Apply with missing revokes: %v", err)
			}
			if diff := cmp.Diff([]string{"2001:db8::9 51820/udp wg"}, listed(t, tbl)); diff != "" {
				t.Errorf("after Apply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelExpiry(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	src := netip.MustParseAddr("203.0.113.7")
	start := time.Now()
	if err := tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(t, tbl, src, ssh); !ok {
		t.Fatal("grant missing right after Grant")
	}
	waitFor(t, 4*time.Second, "kernel expires a 2s grant", func() bool {
		_, ok := find(t, tbl, src, ssh)
		return !ok
	})
	t.Logf("gone after %v", time.Since(start).Round(10*time.Millisecond))
}

func TestAddressFamilies(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	for _, s := range []string{"2001:db8::5", "::ffff:198.51.100.9"} {
		if err := tbl.Grant(netip.MustParseAddr(s), "ssh", Open, []policy.PortProto{ssh}, time.Hour); err != nil {
			t.Fatalf("Grant %s: %v", s, err)
		}
	}
	if diff := cmp.Diff([]string{"198.51.100.9 22/tcp ssh", "2001:db8::5 22/tcp ssh"}, listed(t, tbl)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	g4 := ns.Exec(t, "nft", "list", "set", "inet", "sesame", "open4_ssh")
	g6 := ns.Exec(t, "nft", "list", "set", "inet", "sesame", "open6_ssh")
	if !strings.Contains(g4, "198.51.100.9 . tcp . 22") || !strings.Contains(g6, "2001:db8::5 . tcp . 22") {
		t.Errorf("elements in the wrong sets:\n%s\n%s", g4, g6)
	}
}

// manyGrants returns n IPv4 and n IPv6 grants with distinct sources.
func manyGrants(n int) []Grant {
	var gs []Grant
	for i := range n {
		v4 := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		for _, a := range []netip.Addr{v4, v6} {
			gs = append(gs, Grant{Src: a, Door: "ssh", Ports: []policy.PortProto{ssh}, TTL: time.Hour})
		}
	}
	return gs
}

func TestManyGrants(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	if err := tbl.Apply(manyGrants(2500), nil); err != nil {
		t.Fatalf("Apply 5000 grants: %v", err)
	}
	if got := len(listed(t, tbl)); got != 5000 {
		t.Errorf("List after 5000 grants: %d elements", got)
	}
	// Without DESTROYSETELEM and without asking first: 5000 deletes of
	// live grants and 20 of missing ones (their new grants), which the
	// kernel refuses and the retry must leave out.
	old := newTable(t, ns, withoutDestroy(), func(o *options) { o.noQuery = true })
	if err := old.Apply(manyGrants(2510), nil); err != nil {
		t.Fatalf("Apply 5020 grants without destroy: %v", err)
	}
	if got := len(listed(t, tbl)); got != 5020 {
		t.Errorf("List after 5020 grants: %d elements", got)
	}
}

func TestDelete(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	if err := tbl.Delete(); !errors.Is(err, ErrNoTable) {
		t.Errorf("Delete before Ensure: %v, want ErrNoTable", err)
	}
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	if err := tbl.Grant(netip.MustParseAddr("198.51.100.2"), "ssh", Open, []policy.PortProto{ssh}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := tbl.List(); !errors.Is(err, ErrNoTable) {
		t.Errorf("List after Delete: %v, want ErrNoTable", err)
	}
	if out := ns.Exec(t, "nft", "list", "tables"); strings.Contains(out, "sesame") {
		t.Errorf("table still there: %s", out)
	}
	if err := tbl.Delete(); !errors.Is(err, ErrNoTable) {
		t.Errorf("second Delete: %v, want ErrNoTable", err)
	}
}

// TestProbeDestroy: the probe agrees with the kernel version (DESTROYSETELEM
// arrived in Linux 6.3).
func TestProbeDestroy(t *testing.T) {
	ns := nstest.New(t, "nft")
	w, err := dialWire(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	got, err := w.probeDestroy()
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var major, minor int
	if f := strings.FieldsFunc(string(rel), func(r rune) bool { return r < '0' || r > '9' }); len(f) >= 2 {
		major, _ = strconv.Atoi(f[0])
		minor, _ = strconv.Atoi(f[1])
	}
	if want := major > 6 || major == 6 && minor >= 3; got != want {
		t.Errorf("probeDestroy on Linux %s = %v, want %v", strings.TrimSpace(string(rel)), got, want)
	}
}

// TestGrantComment: a grant's comment (a fleet grant names its origin
// there) is what List reads back, a grant without one carries the door's
// name, and a re-grant replaces the comment with its own.
func TestGrantComment(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	src := netip.MustParseAddr("2001:db8::7")
	apply := func(comment string) {
		t.Helper()
		g := Grant{Src: src, Door: "ssh", Kind: Open, Ports: []policy.PortProto{ssh}, TTL: time.Minute, Comment: comment}
		if err := tbl.Apply([]Grant{g}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ set, want string }{
		{"fleet:ssh:bastion-1:9f1c", "fleet:ssh:bastion-1:9f1c"},
		{"", "ssh"},
		{"fleet:ssh:web-2:0a0b", "fleet:ssh:web-2:0a0b"},
	} {
		apply(c.set)
		e, ok := find(t, tbl, src, ssh)
		if !ok || e.Comment != c.want {
			t.Errorf("grant with comment %q: listed %+v (found %v), want comment %q", c.set, e, ok, c.want)
		}
	}
	long := Grant{Src: src, Door: "ssh", Kind: Open, Ports: []policy.PortProto{ssh}, TTL: time.Minute, Comment: strings.Repeat("x", maxComment+1)}
	if err := tbl.Apply([]Grant{long}, nil); err == nil {
		t.Error("a comment over the kernel's bound was accepted")
	}
}

package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// event builds an nftables notification of msg type typ on a table of
// family fam, with attribute 1 (the table) and, if set is not empty,
// attribute 2 (an element list's set).
func event(typ int, fam uint8, table, set string) netlink.Message {
	b := []byte{fam, 0, 0, 0}
	attr := func(t uint16, s string) {
		v := append([]byte(s), 0)
		a := make([]byte, 4, 4+len(v)+3)
		binary.NativeEndian.PutUint16(a, uint16(4+len(v)))
		binary.NativeEndian.PutUint16(a[2:], t)
		a = append(a, v...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		b = append(b, a...)
	}
	attr(1, table)
	if set != "" {
		attr(2, set)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ)}, Data: b}
}

func TestTouches(t *testing.T) {
	t.Parallel()
	const inet, ip = unix.NFPROTO_INET, unix.NFPROTO_IPV4
	truncated := event(unix.NFT_MSG_DELTABLE, inet, "sesame", "")
	truncated.Data = truncated.Data[:6]
	other := event(unix.NFT_MSG_DELTABLE, inet, "sesame", "")
	other.Header.Type = unix.NFNL_SUBSYS_IPSET<<8 | unix.NFT_MSG_DELTABLE
	for _, tt := range []struct {
		name string
		in   netlink.Message
		want bool
	}{
		{"table deleted", event(unix.NFT_MSG_DELTABLE, inet, "sesame", ""), true},
		{"chain deleted", event(unix.NFT_MSG_DELCHAIN, inet, "sesame", ""), true},
		{"rule added", event(unix.NFT_MSG_NEWRULE, inet, "sesame", ""), true},
		{"set deleted", event(unix.NFT_MSG_DELSET, inet, "sesame", "open4_ssh"), true},
		{"guarded element deleted", event(unix.NFT_MSG_DELSETELEM, inet, "sesame", "guarded"), true},
		{"guarded element destroyed", event(nfMsgDestroySetElem, inet, "sesame", "guarded"), true},
		{"grant added", event(unix.NFT_MSG_NEWSETELEM, inet, "sesame", "open4_ssh"), false},
		{"grant deleted", event(unix.NFT_MSG_DELSETELEM, inet, "sesame", "pend6_ssh"), false},
		{"grant destroyed", event(nfMsgDestroySetElem, inet, "sesame", "manual4_ssh"), false},
		{"generation", event(unix.NFT_MSG_NEWGEN, inet, "sesame", ""), false},
		{"another table", event(unix.NFT_MSG_DELTABLE, inet, "filter", ""), false},
		{"a longer name", event(unix.NFT_MSG_DELTABLE, inet, "sesame2", ""), false},
		{"same name, family ip", event(unix.NFT_MSG_DELTABLE, ip, "sesame", ""), false},
		{"another subsystem", other, false},
		{"truncated", truncated, false},
	} {
		if got := touches(tt.in, "sesame"); got != tt.want {
			t.Errorf("%s: touches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// touches runs for every grant written (the monitor sees them all): it
// must not allocate.
func TestTouchesAllocs(t *testing.T) {
	m := event(unix.NFT_MSG_NEWSETELEM, unix.NFPROTO_INET, "sesame", "open4_ssh")
	if n := testing.AllocsPerRun(100, func() { touches(m, "sesame") }); n != 0 {
		t.Errorf("touches allocates %v times per event", n)
	}
}

// subscribe opens what Watch reads, for a test to see the kernel's own
// messages.
func subscribe(t *testing.T, ns *nstest.NS) *netlink.Conn {
	t.Helper()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		t.Fatal(err)
	}
	return c
}

// commit reads the messages of one commit (up to its NEWGEN) and reports
// whether touches finds sesame's table in them.
func commit(t *testing.T, c *netlink.Conn) bool {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := false
	for {
		msgs, err := c.Receive()
		if err != nil {
			t.Fatalf("no commit within 5s: %v", err)
		}
		for _, m := range msgs {
			got = got || touches(m, "sesame")
			if m.Header.Type == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN {
				return got
			}
		}
	}
}

// The kernel's own notifications, one commit at a time: sesame's grants
// (Apply, manual grants, revokes) and other tables are not reported;
// every change to the table's structure, and to the guarded set, is.
func TestTouchesKernelEvents(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	p := testPolicy(policy.ClosedDrop, ssh)
	mustEnsure(t, tbl, p)
	c := subscribe(t, ns)
	src := netip.MustParseAddr("198.51.100.2")
	for _, tt := range []struct {
		name string
		do   func() error
		want bool
	}{
		{"grant", func() error { return tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, 10*time.Second) }, false},
		{"regrant", func() error { return tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, 20*time.Second) }, false},
		{"manual grant", func() error { return tbl.Grant(src, "ssh", Manual, []policy.PortProto{ssh}, 10*time.Second) }, false},
		{"revoke", func() error { return tbl.Revoke(src, "ssh", []policy.PortProto{ssh}, true) }, false},
		{"another table", func() error { _, err := ns.Try("nft", "add", "table", "inet", "other"); return err }, false},
		{"same name in family ip", func() error { _, err := ns.Try("nft", "add", "table", "ip", "sesame"); return err }, false},
		{"guarded set flushed", func() error { _, err := ns.Try("nft", "flush", "set", "inet", "sesame", "guarded"); return err }, true},
		{"Ensure", func() error { return tbl.Ensure(p) }, true},
		{"chain flushed", func() error { _, err := ns.Try("nft", "flush", "chain", "inet", "sesame", "input"); return err }, true},
		{"ruleset flushed", func() error { _, err := ns.Try("nft", "flush", "ruleset"); return err }, true},
	} {
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := commit(t, c); got != tt.want {
			t.Errorf("%s: reported %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Watch reports a rule added by hand and ends with ctx.
func TestWatch(t *testing.T) {
	ns := nstest.New(t, "nft")
	tbl := newTable(t, ns)
	mustEnsure(t, tbl, testPolicy(policy.ClosedDrop, ssh))
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- tbl.Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no report %s within 10s", what)
		}
	}
	wait("once subscribed")
	ns.Exec(t, "nft", "add", "rule", "inet", "sesame", "input", "counter")
	wait("of a rule added by hand")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10s of ctx's end")
	}
}

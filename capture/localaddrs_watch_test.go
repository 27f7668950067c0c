package capture

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// fakeEvents is an rtnetlink subscription fed by the test.
type fakeEvents struct {
	in     chan received
	closed chan struct{}
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{in: make(chan received), closed: make(chan struct{})}
}

func (f *fakeEvents) Receive() ([]netlink.Message, error) {
	select {
	case r := <-f.in:
		return r.msgs, r.err
	case <-f.closed:
		return nil, errors.New("use of closed file")
	}
}

func (f *fakeEvents) Close() error { close(f.closed); return nil }

func msg(typ netlink.HeaderType) []netlink.Message {
	return []netlink.Message{{Header: netlink.Header{Type: typ}}}
}

// Watch re-reads the addresses on address and link events, on a lost
// event (ENOBUFS) and on the backstop tick, and nothing else; it tells
// the caller of link events and losses; it closes the subscription and
// joins its reader when ctx ends.
func TestLocalAddrsWatch(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[[]net.Addr]
	set := func(ip string) { cur.Store(&[]net.Addr{&net.IPNet{IP: net.ParseIP(ip)}}) }
	set("192.0.2.1")
	refreshed := make(chan struct{}, 16)
	l := &LocalAddrs{addrs: func() ([]net.Addr, error) {
		refreshed <- struct{}{}
		return *cur.Load(), nil
	}}
	links := make(chan struct{}, 16)
	src := newFakeEvents()
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.watch(ctx, src, tick, func() { links <- struct{}{} }) }()

	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10s", what)
		}
	}
	// step hands the fake's next result to the reader. watch handles
	// results in order, so a callback proves every earlier step handled.
	step := func(r received) { t.Helper(); src.in <- r }
	none := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
			t.Errorf("unexpected %s", what)
		default:
		}
	}
	wait(refreshed, "refresh after subscribing")
	wait(links, "link callback after subscribing")

	set("2001:db8::7")
	step(received{msgs: msg(unix.RTM_NEWADDR)})
	wait(refreshed, "refresh on RTM_NEWADDR")
	if !l.Contains(netip.MustParseAddr("2001:db8::7")) || l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("the set after RTM_NEWADDR is not the new one")
	}

	step(received{msgs: msg(unix.RTM_NEWROUTE)}) // neither address nor link
	step(received{msgs: msg(unix.RTM_DELLINK)})
	wait(links, "link callback on RTM_DELLINK")
	wait(refreshed, "refresh on RTM_DELLINK")
	none(refreshed, "refresh on RTM_NEWROUTE")

	step(received{err: &netlink.OpError{Op: "receive", Err: unix.ENOBUFS}})
	wait(refreshed, "refresh on ENOBUFS")
	wait(links, "link callback on ENOBUFS")

	tick <- time.Time{}
	wait(refreshed, "refresh on the backstop tick")
	none(links, "link callback on the backstop tick")

	step(received{msgs: msg(unix.RTM_DELADDR)}) // the reader still runs after ENOBUFS
	wait(refreshed, "refresh on RTM_DELADDR")

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("watch returned %v, want context.Canceled", err)
	}
	select {
	case <-src.closed:
	default:
		t.Error("watch returned with the subscription open")
	}
}

// A read error other than ENOBUFS ends Watch with it (the caller falls
// back to Poll), and the reader is joined.
func TestLocalAddrsWatchReadError(t *testing.T) {
	t.Parallel()
	l := &LocalAddrs{addrs: func() ([]net.Addr, error) { return nil, nil }}
	src := newFakeEvents()
	done := make(chan error, 1)
	go func() { done <- l.watch(context.Background(), src, nil, nil) }()
	src.in <- received{err: unix.EBADF}
	if err := <-done; !errors.Is(err, unix.EBADF) {
		t.Errorf("watch returned %v, want EBADF", err)
	}
}

// The real subscription: joining the groups works, and ctx ends Watch
// while it waits for events (the socket's Close unblocks Receive).
func TestLocalAddrsWatchSubscribes(t *testing.T) {
	t.Parallel()
	l, err := NewLocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Watch(ctx, time.Hour, nil) }()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10s of ctx's end")
	}
}

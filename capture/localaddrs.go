package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// LocalAddrs is this host's set of addresses. Contains is lock-free: the
// set is immutable and replaced whole by Refresh.
type LocalAddrs struct {
	set   atomic.Pointer[map[netip.Addr]struct{}]
	addrs func() ([]net.Addr, error) // net.InterfaceAddrs; tests replace it
}

// NewLocalAddrs reads this host's addresses.
func NewLocalAddrs() (*LocalAddrs, error) {
	l := &LocalAddrs{addrs: net.InterfaceAddrs}
	if err := l.Refresh(); err != nil {
		return nil, err
	}
	return l, nil
}

// Contains reports whether a is one of this host's addresses. An
// IPv4-mapped IPv6 address matches its IPv4 address.
func (l *LocalAddrs) Contains(a netip.Addr) bool {
	m := l.set.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[a.Unmap().WithZone("")]
	return ok
}

// Refresh re-reads the addresses. On error the previous set stays.
func (l *LocalAddrs) Refresh() error {
	as, err := l.addrs()
	if err != nil {
		return fmt.Errorf("read local addresses: %w", err)
	}
	m := make(map[netip.Addr]struct{}, len(as))
	for _, a := range as {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			m[addr.Unmap()] = struct{}{}
		}
	}
	l.set.Store(&m)
	return nil
}

// Watch keeps the set current until ctx ends, then returns ctx's error.
// It subscribes to the kernel's address and link events (rtnetlink
// groups RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR and RTMGRP_LINK) and
// re-reads the addresses when one arrives, and every backstop anyway, in
// case the kernel dropped an event. A full socket buffer (ENOBUFS: events
// were lost) re-reads at once. linkChanged, if not nil, is called from
// Watch's goroutine after every link event (an interface created,
// deleted, up or down), every loss, and once subscribed (for what
// changed before); it must not block. Watch returns
// an error, without waiting for ctx, if it cannot subscribe or read
// events: the caller may fall back to Poll.
func (l *LocalAddrs) Watch(ctx context.Context, backstop time.Duration, linkChanged func()) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{
		Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR,
	})
	if err != nil {
		return fmt.Errorf("subscribe to address and link events: %w", err)
	}
	t := time.NewTicker(backstop)
	defer t.Stop()
	return l.watch(ctx, c, t.C, linkChanged)
}

// Poll re-reads the set every interval until ctx ends, then returns ctx's
// error: Watch's fallback. A failed refresh keeps the previous set until
// the next one. After each re-read it calls tick, if not nil (links may
// have changed too: the caller checks them).
func (l *LocalAddrs) Poll(ctx context.Context, interval time.Duration, tick func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			_ = l.Refresh()
			if tick != nil {
				tick()
			}
		}
	}
}

// eventSource is the subscribed rtnetlink socket; tests replace it.
type eventSource interface {
	Receive() ([]netlink.Message, error)
	Close() error
}

// received is one Receive's result.
type received struct {
	msgs []netlink.Message
	err  error
}

// watch is Watch on src, re-reading on every tick. It closes src and
// waits for its reader before it returns.
func (l *LocalAddrs) watch(ctx context.Context, src eventSource, tick <-chan time.Time, linkChanged func()) error {
	if linkChanged == nil {
		linkChanged = func() {}
	}
	events := make(chan received)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			msgs, err := src.Receive()
			select {
			case events <- received{msgs, err}:
			case <-quit:
				return
			}
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				return
			}
		}
	}()
	defer func() {
		close(quit)
		src.Close() // ends a Receive
		<-done
	}()
	// What changed between the caller's first read and the subscription.
	_ = l.Refresh()
	linkChanged()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			_ = l.Refresh()
		case r := <-events:
			if errors.Is(r.err, unix.ENOBUFS) {
				_ = l.Refresh()
				linkChanged()
				continue
			}
			if r.err != nil {
				return fmt.Errorf("read address and link events: %w", r.err)
			}
			addrs, links := classify(r.msgs)
			if addrs || links {
				_ = l.Refresh()
			}
			if links {
				linkChanged()
			}
		}
	}
}

// classify says whether msgs hold address events and link events.
func classify(msgs []netlink.Message) (addrs, links bool) {
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			addrs = true
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			links = true
		}
	}
	return addrs, links
}

package capture

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
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

// Watch refreshes the set every interval until ctx ends, then returns
// ctx's error. A failed refresh keeps the previous set until the next one.
func (l *LocalAddrs) Watch(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			_ = l.Refresh()
		}
	}
}

package capture

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocalAddrs(t *testing.T) {
	t.Parallel()
	var addrs []net.Addr
	var fail error
	l := &LocalAddrs{addrs: func() ([]net.Addr, error) { return addrs, fail }}
	if l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("empty set contains 192.0.2.1")
	}
	addrs = []net.Addr{
		&net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}, // 16-byte form
		&net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"},
	}
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true},
		{"2001:db8::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"192.0.2.2", false},
		{"2001:db8::2", false},
	} {
		if got := l.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	fail = errors.New("boom")
	addrs = nil
	if err := l.Refresh(); err == nil {
		t.Error("Refresh with a failing source: no error")
	}
	if !l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("a failed Refresh dropped the previous set")
	}
	fail = nil
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	if l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("Refresh kept a removed address")
	}
}

func TestNewLocalAddrsHasLoopback(t *testing.T) {
	t.Parallel()
	l, err := NewLocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if !l.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("this host's addresses do not include 127.0.0.1")
	}
}

func TestLocalAddrsPoll(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[[]net.Addr]
	cur.Store(&[]net.Addr{&net.IPNet{IP: net.ParseIP("192.0.2.1")}})
	l := &LocalAddrs{addrs: func() ([]net.Addr, error) { return *cur.Load(), nil }}
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Poll(ctx, time.Millisecond, nil) }()

	cur.Store(&[]net.Addr{&net.IPNet{IP: net.ParseIP("2001:db8::7")}})
	want := netip.MustParseAddr("2001:db8::7")
	for deadline := time.Now().Add(10 * time.Second); !l.Contains(want); {
		if time.Now().After(deadline) {
			t.Fatal("Poll did not pick up a new address within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	if l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("Poll kept a removed address")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Poll returned %v, want context.Canceled", err)
	}
}

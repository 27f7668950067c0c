package client

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestWaitOpen: a listening port reports access (nil); a closed one
// reports none once the wait has passed.
func TestWaitOpen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := netip.MustParseAddrPort(ln.Addr().String())
	if err := WaitOpen(target, time.Second); err != nil {
		t.Errorf("open port: %v", err)
	}
	ln.Close()
	if err := WaitOpen(target, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no access to tcp 127.0.0.1:") {
		t.Errorf("closed port: %v, want no access", err)
	}
}

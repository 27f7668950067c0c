package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// The knock sequences the tests use, as `sesame knock` arguments.
var (
	seqSSH   = []string{"7000", "8000:udp", "9000"}
	closeSSH = []string{"9000", "8000:udp", "7000"}
)

// door renders one door block. closeSeq may be empty.
func door(name, seq, open, openFor, seqTimeout, closeSeq string) string {
	s := fmt.Sprintf("door %q {\n  sequence = %s\n  open = %s\n  open_for = %q\n  seq_timeout = %q\n", name, seq, open, openFor, seqTimeout)
	if closeSeq != "" {
		s += fmt.Sprintf("  close_sequence = %s\n", closeSeq)
	}
	return s + "}\n"
}

// config renders a whole config on the server's two veths.
func config(closed string, doors ...string) string {
	return fmt.Sprintf("interfaces = [%q, %q]\ntable = \"sesame\"\nclosed = %q\n\n%s",
		IfServerToClient, IfServerToStranger, closed, strings.Join(doors, "\n"))
}

// sshDoor is the usual door: 7000/tcp, 8000/udp, 9000/tcp opens 22/tcp.
func sshDoor(openFor, seqTimeout string) string {
	return door("ssh", `["7000/tcp", "8000/udp", "9000/tcp"]`, `["22/tcp"]`, openFor, seqTimeout, "")
}

// env is a topology with listeners on 22 and 2222 and a daemon on the
// server.
type env struct {
	*Topo
	D *Daemon
}

func setup(t *testing.T, configText string) *env {
	t.Helper()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	Listen(t, tp.Server, 22)
	Listen(t, tp.Server, 2222)
	return &env{Topo: tp, D: StartDaemon(t, tp.Server, configText)}
}

// grants lists the elements of every grant set (every door's open,
// pending and manual sets) for addr's family.
func (e *env) grants(t *testing.T, addr netip.Addr) []Element {
	t.Helper()
	elems, err := Grants(e.Server)
	if err != nil {
		t.Fatal(err)
	}
	var out []Element
	for _, el := range elems {
		if el.Addr.Is4() == addr.Is4() {
			out = append(out, el)
		}
	}
	return out
}

// waitIn waits up to 5s for the element addr . tcp . port in the set
// named set and returns it.
func (e *env) waitIn(t *testing.T, set string, addr netip.Addr, port uint16) Element {
	t.Helper()
	var el Element
	if !Poll(5*time.Second, func() bool {
		for _, g := range e.grants(t, addr) {
			if g.Set == set && g.Addr == addr && g.Proto == "tcp" && g.Port == port {
				el = g
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no %s . tcp . %d in %s within 5s; grants: %v", addr, port, set, e.grants(t, addr))
	}
	return el
}

// waitGrant waits up to 5s for the element addr . tcp . port and returns it.
func (e *env) waitGrant(t *testing.T, addr netip.Addr, port uint16) Element {
	t.Helper()
	var el Element
	ok := Poll(5*time.Second, func() bool {
		var found bool
		el, found = Find(e.grants(t, addr), addr, "tcp", port)
		return found
	})
	if !ok {
		t.Fatalf("no grant %s . tcp . %d within 5s; grants: %v", addr, port, e.grants(t, addr))
	}
	return el
}

// waitGone waits up to timeout for the element addr . tcp . port to leave.
func (e *env) waitGone(t *testing.T, addr netip.Addr, port uint16, timeout time.Duration) {
	t.Helper()
	if !Poll(timeout, func() bool {
		_, found := Find(e.grants(t, addr), addr, "tcp", port)
		return !found
	}) {
		t.Fatalf("grant %s . tcp . %d still there after %s: %v", addr, port, timeout, e.grants(t, addr))
	}
}

// noGrant fails if addr has any grant.
func (e *env) noGrant(t *testing.T, addr netip.Addr) {
	t.Helper()
	for _, el := range e.grants(t, addr) {
		if el.Addr == addr {
			t.Errorf("unexpected grant %v", el)
		}
	}
}

// waitLog waits up to 5s for a log line and fails the test without one.
func (e *env) waitLog(t *testing.T, m Match, what string) Entry {
	t.Helper()
	en, err := e.D.WaitLog(5*time.Second, m)
	if err != nil {
		t.Fatalf("daemon did not log %s: %v", what, err)
	}
	return en
}

// mustConnect fails unless from reaches to:port and an echo comes back.
func mustConnect(t *testing.T, from *nstest.NS, to netip.Addr, port uint16) {
	t.Helper()
	if err := Connect(from, to, port, 3*time.Second); err != nil {
		t.Errorf("connect %s -> %s: %v, want it open", from.Name, netip.AddrPortFrom(to, port), err)
	}
}

// mustRefuse fails unless a connect is refused at once (closed = "reject").
func mustRefuse(t *testing.T, from *nstest.NS, to netip.Addr, port uint16) {
	t.Helper()
	err := Connect(from, to, port, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect %s -> %s: %v, want connection refused", from.Name, netip.AddrPortFrom(to, port), err)
	}
}

// mustTimeOut fails unless a connect times out (closed = "drop").
func mustTimeOut(t *testing.T, from *nstest.NS, to netip.Addr, port uint16) {
	t.Helper()
	err := Connect(from, to, port, time.Second)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("connect %s -> %s: %v, want a timeout (dropped)", from.Name, netip.AddrPortFrom(to, port), err)
	}
}

// knock runs sesame knock from ns to host with args (ports and flags).
func knock(t *testing.T, ns *nstest.NS, host netip.Addr, args ...string) {
	t.Helper()
	var flags []string
	if host.Is6() {
		flags = append(flags, "-6")
	}
	Knock(t, ns, append(append(flags, host.String()), args...)...)
}

// Package e2e tests the real sesame binary, as root, in throwaway network
// namespaces: a server that runs the daemon, a client that knocks, and a
// stranger that does not. The helpers here build that topology, knock with
// `sesame knock`, connect for real, read the kernel's grant sets with nft
// and run the daemon; the tests are in the _test files.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// SesameBin is the sesame binary under test; TestMain sets it.
var SesameBin string

// The topology's addresses and interface names: nstest's, under the names
// the tests use.
var (
	ServerClient4   = nstest.ServerClient4
	Client4         = nstest.Client4
	ServerClient6   = nstest.ServerClient6
	Client6         = nstest.Client6
	ServerStranger4 = nstest.ServerStranger4
	Stranger4       = nstest.Stranger4
	ServerStranger6 = nstest.ServerStranger6
	Stranger6       = nstest.Stranger6
)

// Interface names. The server's are the ones the daemon captures on.
const (
	IfServerToClient   = nstest.IfServerToClient
	IfServerToStranger = nstest.IfServerToStranger
	IfPeer             = nstest.IfPeer // the client's and the stranger's link to the server
)

// Topo is a server joined to a client and a stranger by veth pairs.
type Topo struct {
	Server, Client, Stranger *nstest.NS
}

// NewTopo builds the three namespaces and their links (nstest.ClientLink
// and nstest.StrangerLink); everything is deleted when the test ends.
func NewTopo(t testing.TB) *Topo {
	t.Helper()
	tp := &Topo{
		Server:   nstest.New(t, "srv"),
		Client:   nstest.New(t, "cli"),
		Stranger: nstest.New(t, "str"),
	}
	if err := nstest.Join(tp.Server, tp.Client, nstest.ClientLink); err != nil {
		t.Fatal(err)
	}
	if err := nstest.Join(tp.Server, tp.Stranger, nstest.StrangerLink); err != nil {
		t.Fatal(err)
	}
	return tp
}

// Listen starts an echo server on every address of ns at port (TCP, IPv4
// and IPv6): each connection gets back every line it sends. It stops when
// the test ends.
func Listen(t testing.TB, ns *nstest.NS, port uint16) {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort("::", strconv.Itoa(int(port))))
		return err
	})
	if err != nil {
		t.Fatalf("listen on port %d in %s: %v", port, ns.Name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
}

// Conn is a TCP connection made from inside a namespace.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Dial connects from ns to addr:port, giving up after timeout. With
// closed = "drop" a guarded port times out; with "reject" it is refused at
// once.
func Dial(ns *nstest.NS, addr netip.Addr, port uint16, timeout time.Duration) (*Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), timeout)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, r: bufio.NewReader(c)}, nil
}

// Echo sends one line and waits for it to come back.
func (c *Conn) Echo(line string, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if got != line+"\n" {
		return fmt.Errorf("echo = %q, want %q", got, line+"\n")
	}
	return nil
}

// Connect dials from ns to addr:port and exchanges one line: the port is
// really reachable. The connection is closed before it returns.
func Connect(ns *nstest.NS, addr netip.Addr, port uint16, timeout time.Duration) error {
	c, err := Dial(ns, addr, port, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Echo("ping", timeout)
}

// Knock runs `sesame knock -v ARGS...` in ns (host and ports, and any
// flags such as -6 or -u) and fails the test if it does not exit 0.
func Knock(t testing.TB, ns *nstest.NS, args ...string) string {
	t.Helper()
	return ns.Exec(t, SesameBin, append([]string{"knock", "-v"}, args...)...)
}

// KnockTry is Knock that returns the error instead of failing the test.
func KnockTry(ns *nstest.NS, args ...string) (string, error) {
	return ns.Try(SesameBin, append([]string{"knock"}, args...)...)
}

// Poll calls cond until it returns true or timeout passes, and reports
// whether it did.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

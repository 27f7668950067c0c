package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// openIn is Open inside the network namespace whose open file descriptor
// is nsFD.
func openIn(nsFD int, ifname string, p *policy.Policy, opts ...Option) (*Conn, error) {
	return Open(ifname, p, append(opts, WithNetNS(nsFD))...)
}

// vethPair makes two namespaces joined by a veth pair: vA in the first
// (192.0.2.1, 2001:db8::1), vB in the second (192.0.2.2, 2001:db8::2).
func vethPair(t *testing.T) (ns1, ns2 *nstest.NS) {
	t.Helper()
	ns1, ns2 = nstest.New(t, "cap1"), nstest.New(t, "cap2")
	ns1.Exec(t, "ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", ns2.Name)
	for _, s := range []struct {
		ns  *nstest.NS
		dev string
		v4  string
		v6  string
	}{{ns1, "vA", "192.0.2.1/24", "2001:db8::1/64"}, {ns2, "vB", "192.0.2.2/24", "2001:db8::2/64"}} {
		s.ns.Exec(t, "ip", "addr", "add", s.v4, "dev", s.dev)
		s.ns.Exec(t, "ip", "addr", "add", s.v6, "dev", s.dev, "nodad")
		s.ns.Exec(t, "ip", "link", "set", s.dev, "up")
	}
	return ns1, ns2
}

// send runs the sends inside ns.
func send(t *testing.T, ns *nstest.NS, sends ...func() error) {
	t.Helper()
	err := inNetNS(ns.FD(), func() error {
		for _, s := range sends {
			if err := s(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// syn connects to a closed port: one SYN, answered by a reset.
func dialSYN(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		var oe *net.OpError
		if errors.As(err, &oe) && !oe.Timeout() {
			return nil // refused, as expected
		}
		return err
	}
}

func udp(addr string) func() error {
	return func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("knock"))
		return err
	}
}

// udpDstOpts sends a UDP datagram with an IPv6 destination options header
// (one PadN option) in front of the UDP header.
func udpDstOpts(addr string) func() error {
	return func() error {
		c, err := net.Dial("udp6", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		rc, err := c.(*net.UDPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Control(func(fd uintptr) {
			opts := string([]byte{0, 0, 1, 4, 0, 0, 0, 0})
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, opts)
		})
		if err = errors.Join(err, serr); err != nil {
			return fmt.Errorf("set IPV6_DSTOPTS: %w", err)
		}
		_, err = c.Write([]byte("knock"))
		return err
	}
}

func knockPolicy(pp ...policy.PortProto) *policy.Policy {
	return &policy.Policy{Doors: []policy.Door{{Name: "t", Sequence: pp, TCPFlags: policy.DefaultTCPFlags}}}
}

// rawTCP sends one TCP segment with the given flags to addr ("IP:port")
// from a raw socket: the scan probes (FIN, NULL, Xmas...) that a connect
// cannot make. The kernel adds the IP header; the checksum is left zero,
// which capture does not check (the receiving TCP stack drops the segment
// after capture has seen it).
func rawTCP(addr string, flags uint8) func() error {
	return func() error {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return err
		}
		family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Addr: ap.Addr().As16()})
		if ap.Addr().Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		var h [20]byte
		binary.BigEndian.PutUint16(h[0:], 40000)
		binary.BigEndian.PutUint16(h[2:], ap.Port())
		h[12] = 5 << 4
		h[13] = flags
		binary.BigEndian.PutUint16(h[14:], 1024)
		return unix.Sendto(fd, h[:], 0, sa)
	}
}

// readUntil reads hits until one to the sentinel arrives. Packets on one
// veth are queued in order, so every packet sent before the sentinel has
// been seen (or filtered) by then.
func readUntil(t *testing.T, c *Conn, proto policy.Proto, sentinel uint16) []knock.Hit {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []knock.Hit
	for {
		var h knock.Hit
		if err := c.ReadHit(&h); err != nil {
			t.Fatalf("ReadHit after %d hits %+v: %v", len(got), got, err)
		}
		if h.At.IsZero() {
			t.Errorf("hit %+v without a capture time", h)
		}
		h.At = time.Time{}
		got = append(got, h)
		if h.Proto == proto && h.Port == sentinel {
			return got
		}
	}
}

func TestConnNetNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		ring bool
	}{
		{"ring", nil, true},
		{"socket", []Option{WithRing(-1), WithRecvBuffer(1 << 20)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testConn(t, tc.ring, tc.opts...) })
	}
}

func testConn(t *testing.T, wantRing bool, opts ...Option) {
	ns1, ns2 := vethPair(t)
	var (
		a1, a2 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		b1, b2 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	)
	p := knockPolicy(
		policy.PortProto{Port: 7000, Proto: policy.TCP},
		policy.PortProto{Port: 8000, Proto: policy.UDP},
		policy.PortProto{Port: 8500, Proto: policy.UDP})
	c, err := openIn(ns1.FD(), "vA", p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Ring() != wantRing {
		t.Errorf("Ring() = %v, want %v", c.Ring(), wantRing)
	}

	// A door has a UDP step: every UDP datagram counts, at any port; TCP
	// only as bare SYNs (the door's default flags).
	send(t, ns2,
		dialSYN("192.0.2.1:7000"),
		udp("192.0.2.1:8000"),
		udp("192.0.2.1:9999"),                                       // not a knock port: still a step of a sweep
		rawTCP("192.0.2.1:7000", policy.FlagFIN),                    // dropped by the kernel
		rawTCP("192.0.2.1:7000", policy.FlagSYN|policy.FlagACK),     // dropped by the kernel
		rawTCP("[2001:db8::1]:7000", policy.FlagACK|policy.FlagPSH), // dropped by the kernel
		dialSYN("[2001:db8::1]:7000"),
		dialSYN("[2001:db8::1]:22"), // bare SYN to another port
		udp("[2001:db8::1]:9999"),
		udpDstOpts("[2001:db8::1]:8000"), // passed by the filter, walked by Decode
		udpDstOpts("[2001:db8::1]:9999"),
	)
	// Outgoing packets must not show up.
	send(t, ns1, dialSYN("192.0.2.2:7000"), dialSYN("[2001:db8::2]:7000"), udp("192.0.2.2:8000"))
	send(t, ns2, udp("192.0.2.1:8500"))

	want := []knock.Hit{
		{Src: a2, Dst: a1, Proto: policy.TCP, Port: 7000, Flags: policy.FlagSYN},
		{Src: a2, Dst: a1, Proto: policy.UDP, Port: 8000},
		{Src: a2, Dst: a1, Proto: policy.UDP, Port: 9999},
		{Src: b2, Dst: b1, Proto: policy.TCP, Port: 7000, Flags: policy.FlagSYN},
		{Src: b2, Dst: b1, Proto: policy.TCP, Port: 22, Flags: policy.FlagSYN},
		{Src: b2, Dst: b1, Proto: policy.UDP, Port: 9999},
		{Src: b2, Dst: b1, Proto: policy.UDP, Port: 8000},
		{Src: b2, Dst: b1, Proto: policy.UDP, Port: 9999},
		{Src: a2, Dst: a1, Proto: policy.UDP, Port: 8500},
	}
	got := readUntil(t, c, policy.UDP, 8500)
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("hits (-want +got):\n%s", diff)
	}

	// The kernel filter, not user space, dropped the rest: only the wanted
	// packets reached the socket. The counters add up across reads.
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Stats{Packets: uint64(len(want))}, st); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if st2, err := c.Stats(); err != nil || st2 != st {
		t.Errorf("second Stats = %+v, %v; want %+v", st2, err, st)
	}

	// Reload to TCP steps only, with knockd's "fin,!ack": UDP no longer
	// counts anywhere; FIN and Xmas probes do, at any port.
	p2 := knockPolicy(policy.PortProto{Port: 7100, Proto: policy.TCP}, policy.PortProto{Port: 7200, Proto: policy.TCP})
	p2.Doors[0].TCPFlags = policy.TCPFlags{Mask: policy.FlagFIN | policy.FlagACK, Want: policy.FlagFIN}
	if err := c.SetPolicy(p2); err != nil {
		t.Fatal(err)
	}
	xmas := policy.FlagFIN | policy.FlagPSH | policy.FlagURG
	send(t, ns2,
		udp("192.0.2.1:8000"), udp("[2001:db8::1]:7100"), // dropped
		rawTCP("[2001:db8::1]:22", policy.FlagFIN),
		rawTCP("192.0.2.1:5", xmas),
		rawTCP("192.0.2.1:7100", policy.FlagFIN|policy.FlagACK), // dropped
		rawTCP("192.0.2.1:7100", 0),                             // NULL: dropped
		dialSYN("192.0.2.1:23"),                                 // a bare SYN always passes
		rawTCP("192.0.2.1:7200", policy.FlagFIN))
	want = []knock.Hit{
		{Src: b2, Dst: b1, Proto: policy.TCP, Port: 22, Flags: policy.FlagFIN},
		{Src: a2, Dst: a1, Proto: policy.TCP, Port: 5, Flags: xmas},
		{Src: a2, Dst: a1, Proto: policy.TCP, Port: 23, Flags: policy.FlagSYN},
		{Src: a2, Dst: a1, Proto: policy.TCP, Port: 7200, Flags: policy.FlagFIN},
	}
	if diff := cmp.Diff(want, readUntil(t, c, policy.TCP, 7200), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("hits after SetPolicy (-want +got):\n%s", diff)
	}
	if st, err := c.Stats(); err != nil || st.Packets != 13 {
		t.Errorf("Stats after reload = %+v, %v; want 13 packets", st, err)
	}
}

func TestConnCloseUnblocksRead(t *testing.T) {
	ns1, _ := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(policy.PortProto{Port: 7000, Proto: policy.TCP}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var h knock.Hit
		done <- c.ReadHit(&h)
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("ReadHit after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadHit still blocked 10s after Close")
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	var h knock.Hit
	if err := c.ReadHit(&h); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadHit on a closed Conn = %v, want ErrClosed", err)
	}
}

func TestOpenUnknownInterface(t *testing.T) {
	ns1 := nstest.New(t, "cap0")
	if _, err := openIn(ns1.FD(), "nosuch0", knockPolicy()); err == nil {
		t.Fatal("Open on a missing interface: no error")
	}
}

// TestReadHitAllocs reads queued hits and counts allocations: none in
// steady state.
func TestReadHitAllocs(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(policy.PortProto{Port: 8000, Proto: policy.UDP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const runs = 100
	sends := make([]func() error, runs+2)
	for i := range sends {
		sends[i] = udp("192.0.2.1:8000")
	}
	send(t, ns2, sends...)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var h knock.Hit
	var readErr error
	allocs := testing.AllocsPerRun(runs, func() {
		if err := c.ReadHit(&h); err != nil && readErr == nil {
			readErr = err
		}
	})
	if readErr != nil {
		t.Fatal(readErr)
	}
	if allocs != 0 {
		t.Errorf("ReadHit: %v allocations per hit, want 0", allocs)
	}
}

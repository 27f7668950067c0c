package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// udps returns n sends of one datagram each to addr.
func udps(addr string, n int) []func() error {
	s := make([]func() error, n)
	for i := range s {
		s[i] = udp(addr)
	}
	return s
}

// TestReadHitsBatch queues hits in the ring, then reads them in batches:
// one call returns every hit ready (up to the slice's length), in order of
// arrival, without allocating.
func TestReadHitsBatch(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(
		policy.PortProto{Port: 8000, Proto: policy.UDP}, policy.PortProto{Port: 8500, Proto: policy.UDP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Ring() {
		t.Fatal("no ring by default")
	}
	const n = 300
	send(t, ns2, append(udps("192.0.2.1:8000", n), udp("192.0.2.1:8500"))...)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var (
		hs    [64]knock.Hit
		total int
		calls int
		rerr  error
	)
	allocs := testing.AllocsPerRun(1, func() {
		for total < n+1 && rerr == nil {
			var got int
			got, rerr = c.ReadHits(hs[:])
			calls++
			for i := range got {
				h := hs[i]
				want := uint16(8000)
				if total+i == n {
					want = 8500
				}
				if h.Port != want || h.Proto != policy.UDP || h.At.IsZero() {
					t.Fatalf("hit %d = %+v, want a UDP hit to %d with a time", total+i, h, want)
				}
			}
			total += got
		}
	})
	if rerr != nil {
		t.Fatalf("after %d hits: %v", total, rerr)
	}
	// All were queued before the first call: full batches but the last.
	if want := (n + 1 + len(hs) - 1) / len(hs); calls != want {
		t.Errorf("%d hits in %d calls, want %d", total, calls, want)
	}
	if allocs != 0 {
		t.Errorf("ReadHits: %v allocations for %d hits, want 0", allocs, total)
	}
	// Nothing more: the deadline ends the next read.
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadHits(hs[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadHits on an empty ring = %v, want a deadline error", err)
	}
}

// TestRingLongPacket sends a knock whose IPv6 extension header makes it
// longer than a plain SYN (it took the socket-queue copy path when frames
// held 48 bytes): it is read in order between the short packets around it.
func TestRingLongPacket(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(
		policy.PortProto{Port: 8000, Proto: policy.UDP}, policy.PortProto{Port: 8500, Proto: policy.UDP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, ns2, udp("[2001:db8::1]:8500"), udpDstOptsLen("[2001:db8::1]:8000", 72), udp("[2001:db8::1]:8500"))
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var ports []uint16
	var hs [8]knock.Hit
	for len(ports) < 3 {
		n, err := c.ReadHits(hs[:])
		if err != nil {
			t.Fatalf("after %v: %v", ports, err)
		}
		for _, h := range hs[:n] {
			ports = append(ports, h.Port)
		}
	}
	if want := []uint16{8500, 8000, 8500}; !slices.Equal(ports, want) {
		t.Errorf("ports %v, want %v", ports, want)
	}
}

// udpDstOptsLen is udpDstOpts with a destination options header of n
// bytes (a multiple of 8, at most 256): PadN options fill it.
func udpDstOptsLen(addr string, n int) func() error {
	return func() error { return sendDstOpts(addr, n, []byte("knock")) }
}

func sendDstOpts(addr string, n int, payload []byte) error {
	c, err := net.Dial("udp6", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	opts := make([]byte, n)
	opts[1] = byte(n/8 - 1)
	opts[2], opts[3] = 1, byte(n-4) // one PadN option
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, string(opts))
	})
	if err = errors.Join(err, serr); err != nil {
		return err
	}
	_, err = c.Write(payload)
	return err
}

// udpBig sends one datagram of n bytes to addr.
func udpBig(addr string, n int) func() error {
	return func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(make([]byte, n))
		return err
	}
}

// TestRingDrops overfills a one-block ring (292 frames) and checks that the
// kernel counts the packets it could not place, that Packets includes
// them, and that every packet it did place is read.
func TestRingDrops(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(
		policy.PortProto{Port: 8000, Proto: policy.UDP}), WithRing(ringBlock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 700
	frames := ringBlock / knockFrame
	send(t, ns2, udps("192.0.2.1:8000", n)...)
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != n || st.Drops != uint64(n-frames) {
		t.Errorf("Stats = %+v, want %d packets, %d drops", st, n, n-frames)
	}
	if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var hs [100]knock.Hit
	read := 0
	for {
		got, err := c.ReadHits(hs[:])
		read += got
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if read != frames {
		t.Errorf("read %d hits from a full ring of %d frames", read, frames)
	}
	// The ring has room again: the next packet is read.
	send(t, ns2, udp("192.0.2.1:8000"))
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadHits(hs[:]); err != nil || got != 1 {
		t.Errorf("ReadHits after draining = %d, %v; want 1 hit", got, err)
	}
}

// TestRingInterfaceDownUp reads every hit sent after the interface went
// down and up again, long packets included: the kernel's pending ENETDOWN
// on the socket does not cost a packet.
func TestRingInterfaceDownUp(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(
		policy.PortProto{Port: 8000, Proto: policy.UDP}, policy.PortProto{Port: 8500, Proto: policy.UDP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := make(chan error, 1)
	go func() {
		var hs [8]knock.Hit
		var ports []uint16
		got := 0
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			res <- err
			return
		}
		for got < 4 {
			n, err := c.ReadHits(hs[:])
			if errors.Is(err, unix.ENETDOWN) {
				continue
			}
			if err != nil {
				res <- fmt.Errorf("after %d hits: %w", got, err)
				return
			}
			for _, h := range hs[:n] {
				ports = append(ports, h.Port)
			}
			got += n
		}
		if want := []uint16{22, 7000, 8000, 8500}; !slices.Equal(ports, want) {
			res <- fmt.Errorf("ports %v, want %v", ports, want)
			return
		}
		res <- nil
	}()
	time.Sleep(50 * time.Millisecond) // the reader waits in the poller
	ns1.Exec(t, "ip", "link", "set", "vA", "down")
	time.Sleep(50 * time.Millisecond)
	ns1.Exec(t, "ip", "link", "set", "vA", "up")
	ns2.Exec(t, "ip", "link", "set", "vB", "up")
	time.Sleep(200 * time.Millisecond)
	send(t, ns2, dialSYN("192.0.2.1:22"), dialSYN("192.0.2.1:7000"), udpBig("192.0.2.1:8000", 200), udpBig("192.0.2.1:8500", 200))
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// rawFrame is what the kernel wrote in a ring frame's header.
type rawFrame struct {
	net, snap, len int
	cut            bool
}

// nextFrame waits up to 5 s for the ring's next frame, returns its header
// and gives it back. No reader may run on c.
func nextFrame(t *testing.T, c *Conn) rawFrame {
	t.Helper()
	r := c.ring
	deadline := time.Now().Add(5 * time.Second)
	for {
		f := r.at(r.next)
		if atomic.LoadUint32((*uint32)(unsafe.Pointer(&f[tpStatus])))&unix.TP_STATUS_USER != 0 {
			b, cut := r.peek()
			rf := rawFrame{
				net:  int(binary.NativeEndian.Uint16(f[tpNet:])),
				snap: len(b),
				len:  int(binary.NativeEndian.Uint32(f[tpLen:])),
				cut:  cut,
			}
			r.release()
			return rf
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRingLayout checks, on the running kernel, where a datagram socket's
// ring puts the packet (tp_net) for IPv4 and IPv6, and that the capture of
// each of the knock filter's snap lengths lands whole in one frame: a
// UDP knock (snapPlain), a bare IPv6 SYN, and an IPv6 packet whose
// extension header puts its UDP header in the last bytes of snapExt.
func TestRingLayout(t *testing.T) {
	ns1, ns2 := vethPair(t)
	c, err := openIn(ns1.FD(), "vA", knockPolicy(policy.PortProto{Port: 8000, Proto: policy.UDP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ring.frame != knockFrame || c.room <= knockSnapMax {
		t.Fatalf("frame %d bytes with room %d; want %d and room above %d", c.ring.frame, c.room, knockFrame, knockSnapMax)
	}
	t.Logf("knock ring: %d frames of %d bytes (%d KiB)", c.ring.frames, c.ring.frame, len(c.ring.mem)>>10)
	extLen := snapExt - 40 - 8 // the UDP header ends the capture
	for _, tt := range []struct {
		name      string
		send      func() error
		snap, len int
	}{
		{"v4 UDP, long", udpBig("192.0.2.1:8000", 500), snapPlain, 20 + 8 + 500},
		{"v6 UDP, long", udpBig("[2001:db8::1]:8000", 500), snapPlain, 40 + 8 + 500},
		{"v4 SYN", dialSYN("192.0.2.1:22"), -1, -1},
		{"v6 SYN", dialSYN("[2001:db8::1]:22"), -1, -1},
		{"v6 extension header chain", udpDstOptsLen("[2001:db8::1]:8000", extLen), snapExt, 40 + extLen + 8 + 5},
	} {
		send(t, ns2, tt.send)
		f := nextFrame(t, c)
		if f.net != tpNetDatagram {
			t.Errorf("%s: tp_net %d, want %d", tt.name, f.net, tpNetDatagram)
		}
		if tt.snap < 0 { // a SYN: whole, whatever its options
			tt.snap, tt.len = f.len, f.len
		}
		if f.snap != tt.snap || f.len != tt.len || f.cut {
			t.Errorf("%s: frame holds %d of %d bytes (cut %v), want %d of %d", tt.name, f.snap, f.len, f.cut, tt.snap, tt.len)
		}
	}
	// The longest one decodes through ReadHits.
	send(t, ns2, udpDstOptsLen("[2001:db8::1]:8000", extLen))
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var hs [4]knock.Hit
	if n, err := c.ReadHits(hs[:]); err != nil || n != 1 || hs[0].Port != 8000 || hs[0].Src != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("ReadHits = %d, %v, %+v; want the knock to 8000 from 2001:db8::2", n, err, hs[0])
	}
	if st, err := c.Stats(); err != nil || st.Truncated != 0 || st.Drops != 0 {
		t.Errorf("Stats = %+v, %v; want no drop, nothing truncated", st, err)
	}
}

// TestSPARingWhole sends SPA packets that fill the SPA filter's snap
// length exactly (IPv4, and IPv6 with a destination options header) over
// a link with a 9000-byte MTU: each arrives whole with its payload, and a
// longer one is cut by the filter, not by the ring.
func TestSPARingWhole(t *testing.T) {
	ns1, ns2 := vethPair(t)
	ns1.Exec(t, "ip", "link", "set", "vA", "mtu", "9000")
	ns2.Exec(t, "ip", "link", "set", "vB", "mtu", "9000")
	c, err := OpenSPA("vA", spaPolicy(), WithNetNS(ns1.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("SPA ring: %d frames of %d bytes (%d KiB)", c.ring.frames, c.ring.frame, len(c.ring.mem)>>10)
	pl4 := bytes.Repeat([]byte("4"), snapSPA-20-8)
	pl6 := bytes.Repeat([]byte("6"), snapSPA-40-8-8)
	send(t, ns2, udpPayload("192.0.2.1:62201", pl4), udpPayload("192.0.2.1:62201", append(pl4, 'x')))
	for i, want := range []rawFrame{{tpNetDatagram, snapSPA, snapSPA, false}, {tpNetDatagram, snapSPA, snapSPA + 1, false}} {
		if f := nextFrame(t, c); f != want {
			t.Errorf("v4 frame %d: %+v, want %+v", i, f, want)
		}
	}
	send(t, ns2, udpPayload("192.0.2.1:62201", pl4), udpDstOptsPayload("[2001:db8::1]:62201", 8, pl6))
	got := readUntilN(t, c, 2)
	for i, want := range [][]byte{pl4, pl6} {
		if !bytes.Equal(got[i].payload, want) {
			t.Errorf("payload %d: %d bytes, want %d bytes whole", i, len(got[i].payload), len(want))
		}
	}
	if st, err := c.Stats(); err != nil || st.Truncated != 0 {
		t.Errorf("Stats = %+v, %v; want nothing truncated", st, err)
	}
}

// TestSocketTruncated reads a socket without a ring through a buffer
// smaller than the filter's capture (forced here; Open refuses a filter
// that would need it): the cut packet is counted.
func TestSocketTruncated(t *testing.T) {
	ns1, ns2 := vethPair(t)
	ns1.Exec(t, "ip", "link", "set", "vA", "mtu", "9000")
	ns2.Exec(t, "ip", "link", "set", "vB", "mtu", "9000")
	c, err := openIn(ns1.FD(), "vA", knockPolicy(policy.PortProto{Port: 8000, Proto: policy.UDP}), WithRing(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Ring() {
		t.Fatal("a ring, want the socket queue")
	}
	var rcvbuf int
	if err := c.rc.Control(func(fd uintptr) { rcvbuf, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || rcvbuf < DefaultRecvBuffer {
		t.Errorf("SO_RCVBUF = %d (%v), want at least DefaultRecvBuffer", rcvbuf, err)
	}
	// Pass the whole packet: SO_ATTACH_FILTER with ret #0xffff.
	if err := c.pc.SetBPF([]bpf.RawInstruction{{Op: 0x06, K: 0xffff}}); err != nil {
		t.Fatal(err)
	}
	send(t, ns2, udpBig("192.0.2.1:8000", 3000), udp("192.0.2.1:8000"))
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the cut packet (its header is whole), then the knock
		var h knock.Hit
		if err := c.ReadHit(&h); err != nil || h.Port != 8000 || h.Payload != nil {
			t.Fatalf("ReadHit = %v, %+v", err, h)
		}
	}
	if st, err := c.Stats(); err != nil || st.Truncated != 1 {
		t.Errorf("Stats = %+v, %v; want 1 truncated", st, err)
	}
}

// TestSetPolicyRefusesBigSnap: a filter whose capture would not fit the
// socket's frames is refused, and the socket keeps its filter.
func TestSetPolicyRefusesBigSnap(t *testing.T) {
	ns1, ns2 := vethPair(t)
	// The old filter: TCP steps only, so UDP is dropped; the new one
	// would pass every UDP datagram.
	c, err := openIn(ns1.FD(), "vA", knockPolicy(policy.PortProto{Port: 8000, Proto: policy.TCP}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.room = snapPlain - 1 // as if frames had shrunk
	if err := c.SetPolicy(knockPolicy(policy.PortProto{Port: 9000, Proto: policy.UDP})); err == nil {
		t.Fatal("SetPolicy accepted a filter bigger than the frames")
	}
	send(t, ns2, udp("192.0.2.1:9000"), dialSYN("192.0.2.1:8000"))
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var h knock.Hit
	if err := c.ReadHit(&h); err != nil || h.Port != 8000 || h.Proto != policy.TCP {
		t.Errorf("ReadHit = %v, %+v; want the old filter's SYN to 8000 (not the UDP datagram)", err, h)
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadHit(&h); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadHit = %v, %+v; want nothing more", err, h)
	}
}

// TestOpenUnderLoadInOrder opens and closes a Conn again and again while
// 40k numbered packets/s arrive (the i-th from 198.18.0.0+i, longer than a
// plain SYN): every Conn reads them in order, none twice. Opening must
// not leave packets in the socket queue beside the ring.
func TestOpenUnderLoadInOrder(t *testing.T) {
	ns1, ns2 := vethPair(t)
	s := newRawSender(t, ns2, "vB", ns1, "vA")
	p := knockPolicy(policy.PortProto{Port: 8000, Proto: policy.UDP})
	stop := make(chan struct{})
	wait := s.counted(120000, 40000, 40, 8000, stop)
	defer func() { close(stop); wait() }()
	idx := func(a netip.Addr) int {
		b := a.As4()
		return int(b[1]-18)<<16 | int(b[2])<<8 | int(b[3])
	}
	var hs [64]knock.Hit
	bad, read := 0, 0
	for range 40 {
		c, err := openIn(ns1.FD(), "vA", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(40 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		last := -1
		for {
			n, err := c.ReadHits(hs[:])
			for _, h := range hs[:n] {
				i := idx(h.Src)
				if i <= last {
					bad++
					t.Logf("packet %d after %d", i, last)
				}
				last = i
				read++
			}
			if err != nil {
				break
			}
		}
		c.Close()
	}
	if read < 1000 {
		t.Errorf("only %d hits read: no load?", read)
	}
	if bad > 0 {
		t.Errorf("%d of %d hits out of order or repeated", bad, read)
	}
}

// udpDstOptsPayload is udpDstOptsLen with a payload of its own.
func udpDstOptsPayload(addr string, optLen int, payload []byte) func() error {
	return func() error {
		return sendDstOpts(addr, optLen, payload)
	}
}

func spaPolicy() *policy.Policy {
	p := knockPolicy(policy.PortProto{Port: 8000, Proto: policy.UDP})
	p.Doors = append(p.Doors, policy.Door{Name: "spa", Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, SPA: &policy.SPA{Port: 62201}})
	return p
}

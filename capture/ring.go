package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
)

// The receive ring: a TPACKET_V2 PACKET_RX_RING shared with the kernel, so
// that the kernel writes each packet that passes the filter straight into
// a frame of mapped memory and user space reads every ready frame after
// one wake-up, with no system call per packet. Its frames are the socket's
// buffer: a flood that outpaces the reader fills them and the kernel counts
// the packets it could not place (PACKET_STATISTICS drops), as it does for
// a full socket queue.
//
// Why TPACKET_V2 and not V3: a V3 ring hands user space whole blocks,
// retired when full or when the block timer fires (whole milliseconds,
// jiffy-rounded: 4 ms at HZ=250), so a lone knock would wait for the
// timer. V2 marks each frame ready at once and wakes the reader per
// packet, like a plain socket, so the knock-to-grant latency stays that of
// one wake-up while a flood is read in batches (libpcap's immediate mode
// makes the same choice).
const (
	// DefaultRingBytes is the ring's size unless WithRing says otherwise:
	// 16384 frames, about 90 ms of a 180k packets/s flood. The kernel maps
	// it whole, so it counts in the daemon's resident memory.
	DefaultRingBytes = 4 << 20
	// ringFrame is one frame: the 32-byte tpacket2_hdr, the sockaddr_ll
	// and the kernel's padding (the IP header starts at tp_net = 80 in
	// datagram mode), then 176 bytes of packet, which hold snapPlain: any
	// IP header with a TCP or UDP header (IPv4 with options: 60+20, IPv6:
	// 40+20). A 128-byte frame held 48 bytes, so every IPv6 TCP probe went
	// through the socket-queue copy below, which the kernel stops,
	// silently, once the receive buffer is full: an IPv6 scan lost probes
	// unseen (issue 11; TestAttackSweep). A longer capture (an IPv6 packet
	// with extension headers, which the filter passes with snapExt bytes)
	// is truncated in its frame, and the kernel also queues it whole on
	// the socket (PACKET_COPY_THRESH, frame status TP_STATUS_COPY), where
	// the reader takes it from.
	ringFrame = 256
	ringBlock = 64 << 10 // frames never straddle blocks; 16 pages per block
)

// tpacket2_hdr offsets (linux/if_packet.h).
const (
	tpStatus  = 0
	tpSnaplen = 8
	tpNet     = 14
)

// ring is the mapped PACKET_RX_RING. Only the reader touches next; the
// kernel and the reader hand each frame back and forth through its status
// word, read and written atomically.
type ring struct {
	mem    []byte
	frames int
	next   int
}

// setupRing switches the socket to TPACKET_V2 and maps a ring of about
// bytes (rounded down to whole blocks, at least one).
func setupRing(fd int, bytes int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("set TPACKET_V2: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return nil, fmt.Errorf("set PACKET_COPY_THRESH: %w", err)
	}
	blocks := max(1, bytes/ringBlock)
	req := unix.TpacketReq{
		Block_size: ringBlock,
		Block_nr:   uint32(blocks),
		Frame_size: ringFrame,
		Frame_nr:   uint32(blocks * (ringBlock / ringFrame)),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set PACKET_RX_RING (%d frames): %w", req.Frame_nr, err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*ringBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the receive ring: %w", err)
	}
	return &ring{mem: mem, frames: int(req.Frame_nr)}, nil
}

// status is the frame's status word, shared with the kernel.
func (r *ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*ringFrame+tpStatus]))
}

// peek returns the packet in the next frame if the kernel has handed it to
// user space, or nil, and whether the kernel also queued the whole packet
// on the socket (TP_STATUS_COPY). The caller must release the frame before
// the next peek.
func (r *ring) peek() ([]byte, bool) {
	st := atomic.LoadUint32(r.status(r.next))
	if st&unix.TP_STATUS_USER == 0 {
		return nil, false
	}
	return r.frame(), st&unix.TP_STATUS_COPY != 0
}

func (r *ring) frame() []byte {
	f := r.mem[r.next*ringFrame : (r.next+1)*ringFrame]
	net := int(binary.NativeEndian.Uint16(f[tpNet:]))
	snap := int(binary.NativeEndian.Uint32(f[tpSnaplen:]))
	if net >= ringFrame || snap > ringFrame-net {
		return f[:0] // never written so by the kernel; skip it
	}
	return f[net : net+snap]
}

// release gives the frame back to the kernel and moves to the next one.
func (r *ring) release() {
	atomic.StoreUint32(r.status(r.next), unix.TP_STATUS_KERNEL)
	r.next++
	if r.next == r.frames {
		r.next = 0
	}
}

func (r *ring) unmap() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// mapRing sets up the ring on the Conn's socket, then empties the socket
// queue of what arrived between bind and the ring (those packets predate
// Open's return, as if they had come before it).
func (c *Conn) mapRing(bytes int) error {
	var (
		r    *ring
		rerr error
	)
	err := c.rc.Control(func(fd uintptr) {
		if r, rerr = setupRing(int(fd), bytes); rerr != nil {
			return
		}
		for {
			if _, _, err := unix.Recvfrom(int(fd), c.buf[:], unix.MSG_DONTWAIT); err != nil && err != unix.EINTR {
				return
			}
		}
	})
	if err = errors.Join(err, rerr); err != nil {
		return fmt.Errorf("receive ring: %w", err)
	}
	c.ring = r
	return nil
}

// Ring reports whether the Conn reads through a receive ring.
func (c *Conn) Ring() bool { return c.ring != nil }

// ReadHits blocks until at least one hit arrives, then fills hs with the
// hits ready at that moment, up to len(hs), each with At set to the time
// they were read, and returns how many it filled. It returns ErrClosed once
// the Conn is closed, and a deadline error as ReadHit does. Without a ring
// it returns one hit per call. It allocates nothing in steady state. A hit
// with a Payload (a packet to an SPA port) ends its batch: its Payload
// aliases the Conn's buffer and stays valid until the next read.
func (c *Conn) ReadHits(hs []knock.Hit) (int, error) {
	if len(hs) == 0 {
		return 0, nil
	}
	if c.ring == nil {
		return 1, c.ReadHit(&hs[0])
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.closed.Load() {
			return 0, ErrClosed
		}
		c.dst, c.got = hs, 0
		err := c.rc.Read(c.ringFn)
		n := c.got
		c.dst, c.got = nil, 0
		if n > 0 {
			now := time.Now()
			for i := range n {
				hs[i].At = now
			}
			return n, nil
		}
		if err != nil {
			if c.closed.Load() {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("read packet: %w", err)
		}
	}
}

// fillFromRing is the ring's read callback: it decodes every ready frame
// into c.dst, up to its length, and reports whether the read is done (at
// least one hit, or nothing more to wait for).
func (c *Conn) fillFromRing(fd uintptr) bool {
	r := c.ring
	for c.got < len(c.dst) {
		b, copied := r.peek()
		if b == nil {
			break
		}
		if copied {
			b = c.recvCopy(int(fd), b)
		}
		h := &c.dst[c.got]
		if Decode(b, h) && c.wanted(h) {
			c.got++
			if h.Payload != nil {
				// An SPA payload must outlive this call: keep it in c.buf
				// (a frame goes back to the kernel below) and end the
				// batch, so no later packet overwrites it before the next
				// read.
				if !copied {
					n := copy(c.buf[:], b)
					Decode(c.buf[:n], h)
					c.wanted(h)
				}
				r.release()
				break
			}
		}
		r.release()
	}
	return c.got > 0 || c.closed.Load()
}

// recvCopy takes from the socket queue the whole packet whose truncated
// copy is frame (TP_STATUS_COPY: queued in ring order). A pending socket
// error (ENETDOWN after the interface went down: nothing else reads it in
// ring mode) comes first and is consumed by the call that reports it, so
// the read is retried. If the packet cannot be had, the truncated frame is
// returned, for Decode to use or reject.
func (c *Conn) recvCopy(fd int, frame []byte) []byte {
	for range 4 {
		n, _, err := unix.Recvfrom(fd, c.buf[:], unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			return c.buf[:n]
		case err == unix.EAGAIN:
			return frame
		}
	}
	return frame
}

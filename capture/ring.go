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
	// DefaultRingBytes is the knock socket's ring unless WithRing says
	// otherwise: 18688 frames of knockFrame bytes, about 0.9 s of a 20k
	// packets/s flood or 100 ms at 180k packets/s. The kernel maps it
	// whole, so it counts in the daemon's resident memory.
	DefaultRingBytes = 4 << 20
	// SPARingBytes is the SPA socket's ring (OpenSPA): 480 frames of
	// spaFrame bytes.
	SPARingBytes = 1 << 20
	ringBlock    = 64 << 10 // frames never straddle blocks; 16 pages per block
)

// knockSnapMax is the largest snap length of the knock filter (Filter).
const knockSnapMax = max(snapPlain, snapExt)

// Where the packet starts in a frame. In datagram mode the kernel writes
// it at tp_net = TPACKET_ALIGN(TPACKET2_HDRLEN) + 16 = 80: the 32-byte
// tpacket2_hdr and the 20-byte sockaddr_ll, aligned to 16, then the 16
// bytes it keeps for a link-layer header (net/packet/af_packet.c,
// tpacket_rcv). TestRingLayout checks it on the running kernel.
const (
	tpNetDatagram = 80
	tpAlign       = 16 // TPACKET_ALIGNMENT
)

// frameFor is the frame size that holds a capture of snap bytes whole,
// with room to spare: a frame the kernel had to cut (snaplen equal to the
// frame's room, tp_len larger) is then a sure sign of a truncation that no
// filter asked for, and the Conn counts it (Stats.Truncated).
func frameFor(snap int) int {
	return (tpNetDatagram + snap + 1 + tpAlign - 1) &^ (tpAlign - 1)
}

// The frame sizes: every snap length the socket's filter returns fits in
// one frame (Conn.SetPolicy refuses a filter that would not), so no packet
// is ever cut by the ring or has to be copied to the socket queue.
var (
	knockFrame = frameFor(knockSnapMax) // 224 bytes
	spaFrame   = frameFor(snapSPA)      // 2144 bytes
)

// tpacket2_hdr offsets (linux/if_packet.h).
const (
	tpStatus  = 0
	tpLen     = 4
	tpSnaplen = 8
	tpNet     = 14
)

// ring is the mapped PACKET_RX_RING. Only the reader touches next; the
// kernel and the reader hand each frame back and forth through its status
// word, read and written atomically.
type ring struct {
	mem      []byte
	frame    int // bytes per frame
	perBlock int // frames per block: a block's tail may be unused
	frames   int
	next     int
}

// setupRing switches the socket to TPACKET_V2 and maps a ring of about
// bytes (rounded down to whole blocks, at least one) in frames of frame
// bytes.
func setupRing(fd int, bytes, frame int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("set TPACKET_V2: %w", err)
	}
	blocks := max(1, bytes/ringBlock)
	perBlock := ringBlock / frame
	req := unix.TpacketReq{
		Block_size: ringBlock,
		Block_nr:   uint32(blocks),
		Frame_size: uint32(frame),
		Frame_nr:   uint32(blocks * perBlock),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set PACKET_RX_RING (%d frames of %d bytes): %w", req.Frame_nr, frame, err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*ringBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the receive ring: %w", err)
	}
	return &ring{mem: mem, frame: frame, perBlock: perBlock, frames: int(req.Frame_nr)}, nil
}

// at returns frame i's bytes.
func (r *ring) at(i int) []byte {
	off := i/r.perBlock*ringBlock + i%r.perBlock*r.frame
	return r.mem[off : off+r.frame]
}

// room is how many packet bytes a frame holds.
func (r *ring) room() int { return r.frame - tpNetDatagram }

// peek returns the packet in the next frame if the kernel has handed it to
// user space, or nil, and whether the kernel had to cut it to fit the
// frame. The caller must release the frame before the next peek.
func (r *ring) peek() ([]byte, bool) {
	f := r.at(r.next)
	st := atomic.LoadUint32((*uint32)(unsafe.Pointer(&f[tpStatus])))
	if st&unix.TP_STATUS_USER == 0 {
		return nil, false
	}
	net := int(binary.NativeEndian.Uint16(f[tpNet:]))
	snap := int(binary.NativeEndian.Uint32(f[tpSnaplen:]))
	if net >= len(f) || snap > len(f)-net {
		return f[:0], false // never written so by the kernel; skip it
	}
	cut := snap == len(f)-net && int(binary.NativeEndian.Uint32(f[tpLen:])) > snap
	return f[net : net+snap], cut
}

// release gives the frame back to the kernel and moves to the next one.
func (r *ring) release() {
	f := r.at(r.next)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&f[tpStatus])), unix.TP_STATUS_KERNEL)
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

// mapRing sets up the ring on the Conn's socket. Open calls it while the
// socket's filter still drops everything, so no packet waits in the socket
// queue and none lands in the ring before the real filter is attached.
func (c *Conn) mapRing(bytes, frame int) error {
	var (
		r    *ring
		rerr error
	)
	err := c.rc.Control(func(fd uintptr) { r, rerr = setupRing(int(fd), bytes, frame) })
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
func (c *Conn) fillFromRing(uintptr) bool {
	r := c.ring
	for c.got < len(c.dst) {
		b, cut := r.peek()
		if b == nil {
			break
		}
		if cut {
			c.truncated.Add(1)
		}
		h := &c.dst[c.got]
		if Decode(b, h) && c.wanted(h) {
			c.got++
			if h.Payload != nil {
				// An SPA payload must outlive this call: keep it in c.buf
				// (the frame goes back to the kernel below) and end the
				// batch, so no later packet overwrites it before the next
				// read.
				n := copy(c.buf[:], b)
				Decode(c.buf[:n], h)
				c.wanted(h)
				r.release()
				break
			}
		}
		r.release()
	}
	return c.got > 0 || c.closed.Load()
}

// KnockRing describes the knock socket's default ring: its size in bytes,
// the size of one frame and how many frames it holds.
func KnockRing() (bytes, frame, frames int) {
	blocks := DefaultRingBytes / ringBlock
	return DefaultRingBytes, knockFrame, blocks * (ringBlock / knockFrame)
}

// Package capture watches one network interface for knock packets: a raw
// AF_PACKET socket in datagram mode with a classic BPF filter built from the
// policy, so that the kernel drops everything but packets arriving for this
// host that could be a knock step of some door, at any port (Filter), and a
// pure decoder that turns each datagram into a knock.Hit without
// allocating. SPA packets
// have a socket of their own (OpenSPA), so that neither kind of flood costs
// the other its packets.
package capture

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// ErrClosed is what ReadHit returns once the Conn is closed.
var ErrClosed = errors.New("capture: closed")

// Option configures Open.
type Option func(*options)

type options struct {
	netnsFD int // -1: the caller's namespace
	rcvBuf  int // SO_RCVBUF in bytes; 0: DefaultRecvBuffer without a ring
	ring    int // receive ring in bytes; 0: the default; < 0: none
}

// DefaultRecvBuffer is the receive buffer of a socket without a ring
// (WithRing(-1)), unless WithRecvBuffer says otherwise: the kernel's
// default (about 200 KiB) holds only a few hundred queued packets.
const DefaultRecvBuffer = 4 << 20

// WithNetNS opens the socket inside the network namespace whose open file
// descriptor is fd (a file under /run/netns, or /proc/PID/ns/net).
func WithNetNS(fd int) Option { return func(o *options) { o.netnsFD = fd } }

// WithRecvBuffer sets the socket's receive buffer in bytes: SO_RCVBUFFORCE
// where the process may (CAP_NET_ADMIN), else SO_RCVBUF, which the kernel
// caps at net.core.rmem_max. It matters only without a ring, where it
// defaults to DefaultRecvBuffer.
func WithRecvBuffer(bytes int) Option { return func(o *options) { o.rcvBuf = bytes } }

// WithRing sets the size of the receive ring (ring.go) in bytes; 0 keeps
// the default (DefaultRingBytes, SPARingBytes for OpenSPA) and a negative
// size reads the socket queue instead, one system call per packet.
func WithRing(bytes int) Option { return func(o *options) { o.ring = bytes } }

// Stats are the socket's counters since Open. Every packet that passed the
// filter and did not reach the reader whole is in Drops or Truncated.
type Stats struct {
	Packets uint64 // packets that passed the filter
	Drops   uint64 // of those, dropped because the ring or socket buffer was full
	// Truncated counts packets the kernel cut shorter than the filter's
	// snap length (a frame or buffer too small: never expected).
	Truncated uint64
}

// Conn is a capture socket on one interface. ReadHit must not be called
// from two goroutines at once; Close, SetPolicy and Stats may be called
// from any goroutine.
type Conn struct {
	pc     *packet.Conn
	rc     syscall.RawConn
	closed atomic.Bool
	spa    bool // an SPA socket (OpenSPA): hits are UDP to SPA ports only
	want   atomic.Pointer[wantSet]
	// room is the most bytes of a packet the socket can hand over whole:
	// a ring frame's or buf's. Every filter's snap lengths fit in it.
	room      int
	truncated atomic.Uint64

	// Read state, owned by the single reader: the buffer and the result of
	// readFn, which is built once so that a read allocates nothing.
	buf    [snapSPA]byte
	n      int
	err    error
	readFn func(fd uintptr) bool

	// The receive ring (nil: the socket queue) and the reader's batch:
	// ringFn fills dst[:got]. rmu is held by ReadHits and by Close before
	// it unmaps the ring, so the reader never touches unmapped memory.
	ring   *ring
	rmu    sync.Mutex
	dst    []knock.Hit
	got    int
	ringFn func(fd uintptr) bool
	one    [1]knock.Hit

	mu    sync.Mutex // guards stats
	stats Stats
}

// Open opens a knock capture socket on the interface: knock ports and bare
// SYNs (Filter), read through a ring of DefaultRingBytes.
//
// The socket is bound with a filter that drops everything; the ring is set
// up, and only then is the policy's filter attached. So no packet is queued
// on the socket before the ring is live (which would leave the reader two
// queues to merge), and none is unfiltered.
func Open(ifname string, p *policy.Policy, opts ...Option) (*Conn, error) {
	return open(ifname, p, false, opts)
}

// OpenSPA opens an SPA capture socket on the interface: UDP to the
// policy's SPA ports only (SPAFilter), with up to snapSPA bytes each, read
// through a ring of SPARingBytes. Its hits carry their Payload.
func OpenSPA(ifname string, p *policy.Policy, opts ...Option) (*Conn, error) {
	return open(ifname, p, true, opts)
}

// dropAll is the filter a socket is bound with, until Open attaches the
// real one.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

func open(ifname string, p *policy.Policy, spa bool, opts []Option) (*Conn, error) {
	o := options{netnsFD: -1}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := assembleFor(p, spa); err != nil {
		return nil, err // before any socket exists
	}
	var (
		pc  *packet.Conn
		err error
	)
	listen := func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("capture on %q: %w", ifname, err)
		}
		pc, err = packet.Listen(ifi, packet.Datagram, unix.ETH_P_ALL, &packet.Config{Filter: dropAll})
		if err != nil {
			return fmt.Errorf("open packet socket on %q: %w", ifname, err)
		}
		return nil
	}
	if o.netnsFD >= 0 {
		err = inNetNS(o.netnsFD, listen)
	} else {
		err = listen()
	}
	if err != nil {
		return nil, err
	}
	c, err := newConn(pc, spa, o)
	if err == nil {
		err = c.SetPolicy(p)
	}
	if err != nil {
		c.closeSocket(pc)
		return nil, err
	}
	return c, nil
}

// newConn sets up the bound socket's buffer or ring; the filter still
// drops everything.
func newConn(pc *packet.Conn, spa bool, o options) (*Conn, error) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	c := &Conn{pc: pc, rc: rc, spa: spa, room: snapSPA}
	c.readFn = c.recv
	c.ringFn = c.fillFromRing
	if o.ring < 0 && o.rcvBuf == 0 {
		o.rcvBuf = DefaultRecvBuffer
	}
	if o.rcvBuf > 0 {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.rcvBuf)
			if serr != nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, o.rcvBuf)
			}
		})
		if err = errors.Join(err, serr); err != nil {
			return nil, fmt.Errorf("set receive buffer: %w", err)
		}
	}
	if o.ring >= 0 {
		bytes, frame := cmp.Or(o.ring, DefaultRingBytes), knockFrame
		if spa {
			bytes, frame = cmp.Or(o.ring, SPARingBytes), spaFrame
		}
		if err := c.mapRing(bytes, frame); err != nil {
			return c, err
		}
		c.room = c.ring.room()
	}
	return c, nil
}

// closeSocket undoes a failed open: c may be nil or hold a ring.
func (c *Conn) closeSocket(pc *packet.Conn) {
	if c == nil {
		pc.Close()
		return
	}
	c.Close()
}

// recv is readFn: one packet from the socket queue into buf. MSG_TRUNC
// makes the kernel report the capture's whole length, so a packet longer
// than buf is counted as truncated. It allocates nothing (unix.Recvfrom
// would, for the address).
func (c *Conn) recv(fd uintptr) bool {
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)), unix.MSG_TRUNC, 0, 0)
	c.n, c.err = int(n), nil
	if errno != 0 {
		c.n, c.err = 0, errno
	}
	if c.n > len(c.buf) {
		c.truncated.Add(1)
		c.n = len(c.buf)
	}
	return c.err != unix.EAGAIN && c.err != unix.EINTR
}

// inNetNS runs fn on a thread that has entered the namespace nsFD, then
// returns the thread to its own namespace. Sockets created by fn stay in
// nsFD. If the thread cannot go back, it stays locked and dies with the
// goroutine, so no other goroutine ever runs in the wrong namespace.
func inNetNS(nsFD int, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// assembleFor builds the knock (Filter) or SPA (SPAFilter) program for p.
func assembleFor(p *policy.Policy, spa bool) ([]bpf.Instruction, error) {
	build := Filter
	if spa {
		build = SPAFilter
	}
	prog, err := build(p)
	if err != nil {
		return nil, fmt.Errorf("build capture filter: %w", err)
	}
	return prog, nil
}

// maxSnap is the largest byte count the program's accepts return.
func maxSnap(prog []bpf.Instruction) int {
	m := 0
	for _, ins := range prog {
		if r, ok := ins.(bpf.RetConstant); ok {
			m = max(m, int(r.Val))
		}
	}
	return m
}

// SetPolicy swaps the socket's filter for the new policy's, atomically: the
// kernel replaces the program in one step. A program that would keep more
// of a packet than the socket hands over whole is refused.
func (c *Conn) SetPolicy(p *policy.Policy) error {
	prog, err := assembleFor(p, c.spa)
	if err != nil {
		return err
	}
	if m := maxSnap(prog); m > c.room {
		return fmt.Errorf("capture filter keeps up to %d bytes of a packet, the socket holds %d", m, c.room)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assemble capture filter: %w", err)
	}
	if err := c.pc.SetBPF(raw); err != nil {
		if c.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("attach capture filter: %w", err)
	}
	if c.spa {
		c.want.Store(newSPAWantSet(p))
	} else {
		c.want.Store(newWantSet(p))
	}
	return nil
}

// SetReadDeadline sets the deadline for ReadHit; the zero time means none.
// A ReadHit past its deadline returns an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// ReadHit blocks until a hit arrives and fills h (with h.At set to the time
// it was read), until the Conn is closed (ErrClosed), or until a real error
// occurs. Packets that Decode rejects, and packets that are neither to a
// knock port nor a bare SYN (possible for a moment after SetPolicy, or with
// a large port set), are skipped. It allocates nothing in steady state.
func (c *Conn) ReadHit(h *knock.Hit) error {
	if c.ring != nil {
		_, err := c.ReadHits(c.one[:])
		*h = c.one[0]
		return err
	}
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		err := c.rc.Read(c.readFn)
		if err == nil {
			err = c.err
		}
		if err != nil {
			if c.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("read packet: %w", err)
		}
		if !Decode(c.buf[:c.n], h) || !c.wanted(h) {
			continue
		}
		h.At = time.Now()
		return nil
	}
}

// wanted applies the filter's rule in user space (wantSet). Only an SPA
// socket's hits keep their Payload.
func (c *Conn) wanted(h *knock.Hit) bool { return c.want.Load().wanted(h) }

// Stats returns the socket's counters since Open. The kernel resets its
// counters on every read, so the Conn adds them up.
func (c *Conn) Stats() (Stats, error) {
	s, err := c.pc.Stats()
	if err != nil {
		if c.closed.Load() {
			return Stats{}, ErrClosed
		}
		return Stats{}, fmt.Errorf("read socket statistics: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Packets += uint64(s.Packets)
	c.stats.Drops += uint64(s.Drops)
	c.stats.Truncated = c.truncated.Load()
	return c.stats, nil
}

// Close closes the socket; a ReadHit blocked in another goroutine returns
// ErrClosed. Closing twice returns ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	err := c.pc.Close()
	if c.ring != nil {
		// The close above woke a blocked ReadHits, which returns and
		// lets go of rmu; the ring is unmapped after that.
		c.rmu.Lock()
		err = errors.Join(err, c.ring.unmap())
		c.rmu.Unlock()
	}
	return err
}

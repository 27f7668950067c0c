package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/spoof"
)

// floodSpec is one spoofed-source SYN flood: raw Ethernet frames written on
// an interface of the sender's namespace, to the server's MAC, alternating
// IPv4 sources from 198.18.0.0/15 and IPv6 sources from 2001:db8:ff::/48,
// cycling over the knock ports.
type floodSpec struct {
	Iface          string
	SrcMAC, DstMAC net.HardwareAddr
	Dst4, Dst6     netip.Addr
	Ports          []uint16
	PPS            int           // packets per second; 0: as fast as it goes
	For            time.Duration // bound on the run
	MaxPackets     uint64        // bound on the count; 0: PPS*For (or 50M when unpaced)
}

// floodResult is what the sender did.
type floodResult struct {
	Sent    uint64
	Errors  uint64 // writes the kernel refused (e.g. ENOBUFS)
	Elapsed time.Duration
}

func (r floodResult) PPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// flood runs the flood from inside ns until its time or count bound or
// until stop is closed.
func flood(ns *nstest.NS, s floodSpec, stop <-chan struct{}) (floodResult, error) {
	var res floodResult
	err := ns.Do(func() error {
		var err error
		res, err = floodHere(s, stop)
		return err
	})
	return res, err
}

func floodHere(s floodSpec, stop <-chan struct{}) (floodResult, error) {
	var res floodResult
	if len(s.Ports) == 0 || s.For <= 0 {
		return res, errors.New("flood: no ports or no duration")
	}
	ifi, err := net.InterfaceByName(s.Iface)
	if err != nil {
		return res, fmt.Errorf("flood: %w", err)
	}
	// Protocol 0: the socket only sends, it never queues received frames.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("flood: packet socket: %w", err)
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return res, fmt.Errorf("flood: bind to %s: %w", s.Iface, err)
	}
	max := s.MaxPackets
	if max == 0 {
		max = uint64(s.PPS) * uint64(s.For/time.Millisecond) / 1000
		if s.PPS == 0 {
			max = 50_000_000
		}
	}
	var g frameGen
	g.init(s)
	start := time.Now()
	deadline := start.Add(s.For)
	for res.Sent < max {
		// One batch per check of the clock and of stop.
		batch := uint64(64)
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		if s.PPS > 0 {
			due := uint64(now.Sub(start).Seconds() * float64(s.PPS))
			if due <= res.Sent {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			batch = min(due-res.Sent, 256)
		}
		select {
		case <-stop:
			res.Elapsed = time.Since(start)
			return res, nil
		default:
		}
		for range min(batch, max-res.Sent) {
			if _, err := unix.Write(fd, g.next()); err != nil {
				res.Errors++
			}
			res.Sent++
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// frameGen builds the flood's frames in two reused buffers.
type frameGen struct {
	n      uint64
	ports  []uint16
	f4, f6 []byte
}

const (
	ethLen = 14
	ip4Len = 20
	ip6Len = 40
	tcpLen = 20
)

func (g *frameGen) init(s floodSpec) {
	g.ports = s.Ports
	g.f4 = make([]byte, ethLen+ip4Len+tcpLen)
	g.f6 = make([]byte, ethLen+ip6Len+tcpLen)
	for _, f := range [][]byte{g.f4, g.f6} {
		copy(f[0:6], s.DstMAC)
		copy(f[6:12], s.SrcMAC)
	}
	binary.BigEndian.PutUint16(g.f4[12:], unix.ETH_P_IP)
	ip := g.f4[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], ip4Len+tcpLen)
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	ip[12], ip[13] = 198, 18
	d4 := s.Dst4.As4()
	copy(ip[16:20], d4[:])

	binary.BigEndian.PutUint16(g.f6[12:], unix.ETH_P_IPV6)
	ip = g.f6[ethLen:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], tcpLen)
	ip[6] = unix.IPPROTO_TCP
	ip[7] = 64
	copy(ip[8:14], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff})
	d6 := s.Dst6.As16()
	copy(ip[24:40], d6[:])
}

// next returns the next frame: a SYN from a new spoofed source to the next
// knock port, with valid IPv4 and TCP checksums.
func (g *frameGen) next() []byte {
	g.n++
	n := g.n
	h := n * 0x9E3779B97F4A7C15 // spreads consecutive counts over the range
	port := g.ports[n%uint64(len(g.ports))]
	if n%2 == 0 {
		f := g.f4
		ip := f[ethLen:]
		ip[13] = 18 + byte(h>>63) // 198.18.0.0/15: the 15th bit
		ip[14], ip[15] = byte(h>>40), byte(h>>32)
		binary.BigEndian.PutUint16(ip[4:], uint16(n))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], spoof.Checksum(0, ip[:ip4Len]))
		tcp := ip[ip4Len:]
		fillSYN(tcp, uint16(h>>16)|1024, port, uint32(h))
		sum := pseudo(ip[12:20], tcpLen)
		binary.BigEndian.PutUint16(tcp[16:], spoof.Checksum(sum, tcp))
		return f
	}
	f := g.f6
	ip := f[ethLen:]
	binary.BigEndian.PutUint64(ip[16:24], h) // 2001:db8:ff:xxxx:...: 80 bits vary
	binary.BigEndian.PutUint16(ip[14:16], uint16(n>>1))
	tcp := ip[ip6Len:]
	fillSYN(tcp, uint16(h>>16)|1024, port, uint32(h))
	sum := pseudo(ip[8:40], tcpLen)
	binary.BigEndian.PutUint16(tcp[16:], spoof.Checksum(sum, tcp))
	return f
}

func fillSYN(tcp []byte, sport, dport uint16, seq uint32) {
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 0)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	tcp[16], tcp[17], tcp[18], tcp[19] = 0, 0, 0, 0
}

// pseudo sums the pseudo header: both addresses, the protocol and the
// length (the same sum for IPv4 and IPv6, only the address width differs).
func pseudo(addrs []byte, l4len int) uint32 {
	var s uint32
	for i := 0; i+1 < len(addrs); i += 2 {
		s += uint32(addrs[i])<<8 | uint32(addrs[i+1])
	}
	return s + unix.IPPROTO_TCP + uint32(l4len)
}

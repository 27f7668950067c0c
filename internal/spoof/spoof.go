// Package spoof sends TCP and UDP packets with forged source addresses out
// of a link, as an attacker can: tests and benchmarks use it to complete a
// door's knock sequence from many random sources, and to play a blind
// spoofer who guesses TCP acknowledgments. It writes whole Ethernet frames
// on an AF_PACKET socket, so no route, ARP entry or local address is
// needed for the forged source.
package spoof

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	ACK = 0x10
)

// Packet is one TCP segment (Proto unix.IPPROTO_TCP) or UDP datagram
// (unix.IPPROTO_UDP), without payload.
type Packet struct {
	Src, Dst         netip.Addr // both IPv4 or both IPv6
	Proto            uint8
	SrcPort, DstPort uint16
	Flags            uint8 // TCP
	Seq, Ack         uint32
	Window           uint16 // TCP; 0 means 65535
}

// Sender writes frames on one interface, to one destination MAC.
type Sender struct {
	fd    int
	frame [14 + 40 + 20]byte
}

// Open returns a sender on iface that addresses its frames to dst (the
// next hop's MAC). Call it in iface's network namespace: the socket stays
// there, and Send may then run on any thread.
func Open(iface string, dst net.HardwareAddr) (*Sender, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("spoof: %w", err)
	}
	// Protocol 0: the socket only sends, it never queues received frames.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("spoof: packet socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("spoof: bind to %s: %w", iface, err)
	}
	s := &Sender{fd: fd}
	copy(s.frame[0:6], dst)
	copy(s.frame[6:12], ifi.HardwareAddr)
	return s, nil
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

// Send writes one packet. It allocates nothing.
func (s *Sender) Send(p *Packet) error {
	n, err := s.build(p)
	if err != nil {
		return err
	}
	_, err = unix.Write(s.fd, s.frame[:n])
	return err
}

func (s *Sender) build(p *Packet) (int, error) {
	l4len := 8
	if p.Proto == unix.IPPROTO_TCP {
		l4len = 20
	} else if p.Proto != unix.IPPROTO_UDP {
		return 0, errors.New("spoof: proto must be tcp or udp")
	}
	f := s.frame[:]
	var ip, l4 []byte
	var sum uint32
	switch {
	case p.Src.Is4() && p.Dst.Is4():
		binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
		ip = f[14 : 14+20]
		clear(ip)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
		ip[8] = 64
		ip[9] = p.Proto
		a, b := p.Src.As4(), p.Dst.As4()
		copy(ip[12:16], a[:])
		copy(ip[16:20], b[:])
		binary.BigEndian.PutUint16(ip[10:], Checksum(0, ip))
		sum = sum16(0, ip[12:20])
		l4 = f[14+20 : 14+20+l4len]
	case p.Src.Is6() && p.Dst.Is6() && !p.Src.Is4In6() && !p.Dst.Is4In6():
		binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
		ip = f[14 : 14+40]
		clear(ip)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		ip[6] = p.Proto
		ip[7] = 64
		a, b := p.Src.As16(), p.Dst.As16()
		copy(ip[8:24], a[:])
		copy(ip[24:40], b[:])
		sum = sum16(0, ip[8:40])
		l4 = f[14+40 : 14+40+l4len]
	default:
		return 0, fmt.Errorf("spoof: %v -> %v: want two IPv4 or two IPv6 addresses", p.Src, p.Dst)
	}
	clear(l4)
	binary.BigEndian.PutUint16(l4[0:], p.SrcPort)
	binary.BigEndian.PutUint16(l4[2:], p.DstPort)
	if p.Proto == unix.IPPROTO_TCP {
		binary.BigEndian.PutUint32(l4[4:], p.Seq)
		binary.BigEndian.PutUint32(l4[8:], p.Ack)
		l4[12] = 5 << 4
		l4[13] = p.Flags
		w := p.Window
		if w == 0 {
			w = 65535
		}
		binary.BigEndian.PutUint16(l4[14:], w)
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	}
	sum += uint32(p.Proto) + uint32(l4len)
	c := Checksum(sum, l4)
	if p.Proto == unix.IPPROTO_UDP && c == 0 {
		c = 0xffff
	}
	at := 6 // UDP's checksum field
	if p.Proto == unix.IPPROTO_TCP {
		at = 16
	}
	binary.BigEndian.PutUint16(l4[at:], c)
	return 14 + len(ip) + l4len, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func sum16(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// Checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum (a pseudo header's, or 0). The other raw senders of the
// tests and the benchmark use it too.
func Checksum(sum uint32, b []byte) uint16 {
	sum = sum16(sum, b)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Step is one knock: a port and tcp (a bare SYN) or udp (an empty
// datagram).
type Step struct {
	Port  uint16
	Proto uint8 // unix.IPPROTO_TCP or unix.IPPROTO_UDP
}

// Knocks sends the knock sequence seq to dst from n sources, src(0) to
// src(n-1), one source's whole sequence after the other, at about pps
// packets per second (0: as fast as the socket takes them). It stops early
// at deadline, and returns how many sources sent their whole sequence.
func (s *Sender) Knocks(dst netip.Addr, seq []Step, n int, src func(int) netip.Addr, pps int, deadline time.Time) (int, error) {
	start := time.Now()
	sent := 0
	for i := range n {
		if i%16 == 0 {
			now := time.Now()
			if now.After(deadline) {
				return i, nil
			}
			if pps > 0 {
				if ahead := time.Duration(sent)*time.Second/time.Duration(pps) - now.Sub(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		a := src(i)
		for _, st := range seq {
			p := Packet{Src: a, Dst: dst, Proto: st.Proto, SrcPort: 40000 + uint16(i%20000), DstPort: st.Port,
				Seq: uint32(i) * 2654435761}
			if st.Proto == unix.IPPROTO_TCP {
				p.Flags = SYN
			}
			if err := s.Send(&p); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return i, err
			}
			sent++
		}
	}
	return n, nil
}

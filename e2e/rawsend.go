package e2e

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

// Probe is one kind of scan probe: a UDP datagram or a TCP segment with
// given flags, as port scanners send them.
type Probe struct {
	Name  string
	Proto uint8 // 6 or 17
	Flags uint8 // TCP flags
}

// The probes of the usual scans (nmap -sU, -sS, -sF, -sN, -sX).
var (
	ProbeUDP  = Probe{"UDP", unix.IPPROTO_UDP, 0}
	ProbeSYN  = Probe{"SYN", unix.IPPROTO_TCP, 0x02}
	ProbeFIN  = Probe{"FIN", unix.IPPROTO_TCP, 0x01}
	ProbeNULL = Probe{"NULL", unix.IPPROTO_TCP, 0}
	ProbeXmas = Probe{"Xmas", unix.IPPROTO_TCP, 0x29} // FIN, PSH, URG
)

// RawSender writes hand-made Ethernet frames on one interface of a
// namespace, from any source address: a scanner that sends one probe per
// port without a socket per probe (as masscan does).
type RawSender struct {
	fd             int
	srcMAC, dstMAC net.HardwareAddr
	frame          [14 + 40 + 20]byte
}

// OpenRawSender opens an AF_PACKET socket on ifname inside ns that sends
// frames to dstMAC. Close it when done.
func OpenRawSender(ns *nstest.NS, ifname string, dstMAC net.HardwareAddr) (*RawSender, error) {
	s := &RawSender{fd: -1, dstMAC: dstMAC}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s.srcMAC = ifi.HardwareAddr
		// Protocol 0: the socket only sends, it never queues received frames.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", ifname, err)
		}
		return nil
	})
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return nil, fmt.Errorf("raw sender on %s in %s: %w", ifname, ns.Name, err)
	}
	return s, nil
}

// MAC returns the hardware address of ifname in ns.
func MAC(ns *nstest.NS, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// Close closes the socket.
func (s *RawSender) Close() error { return unix.Close(s.fd) }

// Send sends one probe from src to each port of dst, in the order given,
// at pps packets a second (0: as fast as the socket takes them), and
// returns how many the kernel took. It gives up after timeout. Every probe
// has valid checksums, so the receiving stack answers it as it would a
// real scanner's.
func (s *RawSender) Send(p Probe, src, dst netip.Addr, ports []uint16, pps int, timeout time.Duration) (int, error) {
	if src.Is4() != dst.Is4() {
		return 0, errors.New("raw sender: source and destination of different families")
	}
	f := s.template(p, src, dst)
	start := time.Now()
	deadline := start.Add(timeout)
	sent := 0
	for sent < len(ports) {
		now := time.Now()
		if now.After(deadline) {
			return sent, fmt.Errorf("raw sender: %d of %d probes sent in %s", sent, len(ports), timeout)
		}
		batch := min(64, len(ports)-sent)
		if pps > 0 {
			due := int(now.Sub(start).Seconds() * float64(pps))
			if due <= sent {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			batch = min(batch, due-sent)
		}
		for _, port := range ports[sent : sent+batch] {
			s.fill(f, p, src.Is4(), port, uint32(sent))
			if _, err := unix.Write(s.fd, f); err != nil {
				if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
					return sent, fmt.Errorf("raw sender: %w", err)
				}
				time.Sleep(100 * time.Microsecond) // the queue is full: this probe again
				break
			}
			sent++
		}
	}
	return sent, nil
}

// template builds the frame up to the ports and checksums.
func (s *RawSender) template(p Probe, src, dst netip.Addr) []byte {
	l4 := 8
	if p.Proto == unix.IPPROTO_TCP {
		l4 = 20
	}
	b := s.frame[:0]
	b = append(b, s.dstMAC...)
	b = append(b, s.srcMAC...)
	if src.Is4() {
		b = binary.BigEndian.AppendUint16(b, unix.ETH_P_IP)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4))
		ip[8], ip[9] = 64, p.Proto
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		b = append(b, ip...)
	} else {
		b = binary.BigEndian.AppendUint16(b, unix.ETH_P_IPV6)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4))
		ip[6], ip[7] = p.Proto, 64
		s6, d6 := src.As16(), dst.As16()
		copy(ip[8:], s6[:])
		copy(ip[24:], d6[:])
		b = append(b, ip...)
	}
	l := make([]byte, l4)
	binary.BigEndian.PutUint16(l[0:], 61000) // source port
	if p.Proto == unix.IPPROTO_TCP {
		l[12] = 5 << 4
		l[13] = p.Flags
		binary.BigEndian.PutUint16(l[14:], 1024) // window
	} else {
		binary.BigEndian.PutUint16(l[4:], uint16(l4))
	}
	return append(b, l...)
}

// fill sets the destination port, a varying IPv4 ID and TCP sequence
// number, and the checksums.
func (s *RawSender) fill(f []byte, p Probe, v4 bool, port uint16, n uint32) {
	ipLen, addrs := 40, f[14+8:14+40]
	if v4 {
		ip := f[14:34]
		ipLen, addrs = 20, ip[12:20]
		binary.BigEndian.PutUint16(ip[4:], uint16(n))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], spoof.Checksum(0, ip))
	}
	l4 := f[14+ipLen:]
	binary.BigEndian.PutUint16(l4[2:], port)
	ck := 6 // UDP checksum offset
	if p.Proto == unix.IPPROTO_TCP {
		ck = 16
		binary.BigEndian.PutUint32(l4[4:], n*2654435761)
	}
	l4[ck], l4[ck+1] = 0, 0
	var sum uint32
	for i := 0; i+1 < len(addrs); i += 2 {
		sum += uint32(addrs[i])<<8 | uint32(addrs[i+1])
	}
	sum += uint32(p.Proto) + uint32(len(l4))
	c := spoof.Checksum(sum, l4)
	if c == 0 && p.Proto == unix.IPPROTO_UDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[ck:], c)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

package capture

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// rawSender writes whole Ethernet frames on an interface, addressed to the
// MAC of its peer: packets shaped byte by byte (spoofed sources, exact
// lengths), as a flood generator sends them.
type rawSender struct {
	fd       int
	dst, src net.HardwareAddr
}

// newRawSender opens a sender on ifname in ns towards peerIf in peer.
func newRawSender(t *testing.T, ns *nstest.NS, ifname string, peer *nstest.NS, peerIf string) *rawSender {
	t.Helper()
	s := &rawSender{fd: -1}
	err := inNetNS(peer.FD(), func() error {
		ifi, err := net.InterfaceByName(peerIf)
		if err == nil {
			s.dst = ifi.HardwareAddr
		}
		return err
	})
	if err == nil {
		err = inNetNS(ns.FD(), func() error {
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return err
			}
			s.src = ifi.HardwareAddr
			// Protocol 0: the socket sends only, it queues nothing.
			if s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
			return unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: 0x0300, Ifindex: ifi.Index}) // htons(ETH_P_ALL)
		})
	}
	if err != nil {
		t.Fatalf("raw sender on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(s.fd) })
	return s
}

// frame returns the Ethernet frame that carries the IP packet ip.
func (s *rawSender) frame(ip []byte) []byte {
	f := make([]byte, 14, 14+len(ip))
	copy(f, s.dst)
	copy(f[6:], s.src)
	et := uint16(etherIPv4)
	if ip[0]>>4 == 6 {
		et = etherIPv6
	}
	binary.BigEndian.PutUint16(f[12:], et)
	return append(f, ip...)
}

// counted sends IPv4 UDP packets to port from 198.18.0.0/15, the i-th
// from source 198.18.0.0+i, with payload bytes each, at about pps, until
// n are sent, 20 s pass, or stop is closed; wait returns how many went.
func (s *rawSender) counted(n, pps, payload int, port uint16, stop <-chan struct{}) (wait func() int) {
	var (
		wg   sync.WaitGroup
		sent int
	)
	wg.Go(func() {
		p := testPkt{dst: netip.MustParseAddr("192.0.2.1"), proto: 17, sport: 40000, dport: port, payload: payload}
		start := time.Now()
		for sent < n && time.Since(start) < 20*time.Second {
			select {
			case <-stop:
				return
			default:
			}
			if due := int(time.Since(start).Seconds() * float64(pps)); sent >= due {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			p.src = netip.AddrFrom4([4]byte{198, 18 + byte(sent>>16), byte(sent >> 8), byte(sent)})
			if _, err := unix.Write(s.fd, s.frame(p.build())); err == nil {
				sent++
			}
		}
	})
	return func() int { wg.Wait(); return sent }
}

package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/spoof"
)

// SYNFlood is a spoofed flood of bare TCP SYNs, as raw Ethernet frames
// written on a link (bench/flood.go's generator, cut down): each from a
// random source in 198.18.0.0/15 to a random port of one IPv4 address,
// 60 bytes with the options a Linux client puts in a SYN (MSS, SACK
// permitted, timestamps, window scale), with valid checksums.
type SYNFlood struct {
	stop chan struct{}
	wg   sync.WaitGroup
	sent int
	err  error
}

// FloodSpec says where a SYNFlood goes and how much of it.
type FloodSpec struct {
	From       *nstest.NS // the sender's namespace
	Iface      string     // its interface on the link
	To         *nstest.NS // the receiver's namespace
	PeerIface  string     // the receiver's interface (its MAC is the destination)
	Dst        netip.Addr // IPv4
	Skip       []uint16   // ports never hit (guarded and knock ports)
	PPS        int
	For        time.Duration
	MaxPackets int
}

// StartSYNFlood starts the flood in the background; Stop ends it. It
// stops by itself after MaxPackets or For, whichever comes first.
func StartSYNFlood(t testing.TB, s FloodSpec) *SYNFlood {
	t.Helper()
	var dstMAC, srcMAC net.HardwareAddr
	err := s.To.Do(func() error {
		ifi, err := net.InterfaceByName(s.PeerIface)
		if err == nil {
			dstMAC = ifi.HardwareAddr
		}
		return err
	})
	fd := -1
	if err == nil {
		err = s.From.Do(func() error {
			ifi, err := net.InterfaceByName(s.Iface)
			if err != nil {
				return err
			}
			srcMAC = ifi.HardwareAddr
			// Protocol 0: the socket sends only, it queues nothing.
			if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
			return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0x0300, Ifindex: ifi.Index}) // htons(ETH_P_ALL)
		})
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("SYN flood from %s: %v", s.From.Name, err)
	}
	f := &SYNFlood{stop: make(chan struct{})}
	f.wg.Go(func() {
		defer unix.Close(fd)
		frame := synFrame(dstMAC, srcMAC, s.Dst)
		rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		start := time.Now()
		for f.sent < s.MaxPackets && time.Since(start) < s.For {
			select {
			case <-f.stop:
				return
			default:
			}
			due := int(time.Since(start).Seconds() * float64(s.PPS))
			if f.sent >= due {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			for range min(due-f.sent, 256, s.MaxPackets-f.sent) {
				port := uint16(1024 + rng.IntN(64512))
				if slices.Contains(s.Skip, port) {
					continue
				}
				fillSYN(frame, rng.Uint32(), port)
				if _, err := unix.Write(fd, frame); err != nil && f.err == nil {
					f.err = fmt.Errorf("write: %w", err)
				}
				f.sent++
			}
		}
	})
	t.Cleanup(func() { f.Stop() })
	return f
}

// Stop ends the flood, waits for the sender and returns how many SYNs it
// sent, and its first write error.
func (f *SYNFlood) Stop() (int, error) {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
	return f.sent, f.err
}

// Wait waits for the flood to end by itself.
func (f *SYNFlood) Wait() (int, error) {
	f.wg.Wait()
	return f.Stop()
}

const (
	synEth = 14
	synIP  = 20
	synTCP = 40
)

// synFrame returns a frame for fillSYN: Ethernet, IPv4 to dst, TCP SYN
// with options.
func synFrame(dstMAC, srcMAC net.HardwareAddr, dst netip.Addr) []byte {
	f := make([]byte, synEth+synIP+synTCP)
	copy(f, dstMAC)
	copy(f[6:], srcMAC)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
	ip := f[synEth:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], synIP+synTCP)
	ip[6] = 0x40 // DF
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	ip[12], ip[13] = 198, 18
	d := dst.As4()
	copy(ip[16:20], d[:])
	tcp := ip[synIP:]
	tcp[12] = (synTCP / 4) << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[20:], []byte{
		2, 4, 0x05, 0xb4, // MSS 1460
		4, 2, // SACK permitted
		8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
		1,       // NOP
		3, 3, 7, // window scale 7
	})
	return f
}

// fillSYN gives the frame a new source (from r) and destination port.
func fillSYN(f []byte, r uint32, port uint16) {
	ip := f[synEth:]
	ip[13] = 18 + byte(r>>31) // 198.18.0.0/15
	ip[14], ip[15] = byte(r>>8), byte(r)
	binary.BigEndian.PutUint16(ip[4:], uint16(r>>16)) // ID
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], spoof.Checksum(0, ip[:synIP]))
	tcp := ip[synIP:]
	binary.BigEndian.PutUint16(tcp[0:], 1024+uint16(r>>20))
	binary.BigEndian.PutUint16(tcp[2:], port)
	binary.BigEndian.PutUint32(tcp[4:], r*2654435761)
	tcp[16], tcp[17] = 0, 0
	var sum uint32
	for i := 12; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	sum += unix.IPPROTO_TCP + synTCP
	binary.BigEndian.PutUint16(tcp[16:], spoof.Checksum(sum, tcp))
}

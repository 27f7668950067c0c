package bench

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// BenchmarkMatchPath is the user-space path of one flood packet, without
// the kernel's BPF filter: decode the frame, then Observe. The frames are
// the flood's (spoofed IPv4 and IPv6 SYNs to the knock ports from 64Ki
// distinct sources), so the matcher's table stays full and churns. 1e9 /
// ns/op is the matcher's hits per second on one core.
func BenchmarkMatchPath(b *testing.B) {
	var g frameGen
	g.init(floodSpec{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Dst4: server4, Dst6: server6, Ports: knockPorts})
	frames := make([][]byte, 1<<16)
	for i := range frames {
		frames[i] = append([]byte(nil), g.next()[ethLen:]...)
	}
	p, diags := policy.Parse("bench.hcl", []byte(`interfaces = ["lo"]
door "bench" {
  sequence = ["7000/tcp", "8000/tcp", "9000/tcp"]
  open     = ["2222/tcp"]
}
`))
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	m := knock.New(p, knock.Config{})
	now := time.Unix(1e9, 0)
	var h knock.Hit
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !capture.Decode(frames[i&(len(frames)-1)], &h) {
			b.Fatal("frame does not decode")
		}
		now = now.Add(time.Microsecond)
		m.Observe(h, now)
	}
}

// udpFrames returns n datagrams (from the IP header on, as a Datagram
// socket reads them) from n distinct sources, alternately IPv4 from
// 198.18.0.0/15 and IPv6, to port 53 of the server, with 32 bytes of
// payload (what the filter's snap keeps of a DNS query).
func udpFrames(n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		h := uint64(i+1) * 0x9E3779B97F4A7C15
		payload := make([]byte, 8+32)
		binary.BigEndian.PutUint16(payload[0:], uint16(h>>16)|1024)
		binary.BigEndian.PutUint16(payload[2:], 53)
		binary.BigEndian.PutUint16(payload[4:], uint16(len(payload)))
		if i%2 == 0 {
			ip := make([]byte, ip4Len, ip4Len+len(payload))
			ip[0] = 0x45
			binary.BigEndian.PutUint16(ip[2:], uint16(ip4Len+len(payload)))
			ip[8], ip[9] = 64, 17
			ip[12], ip[13], ip[14], ip[15] = 198, 18+byte(h>>63), byte(h>>40), byte(h>>32)
			d := server4.As4()
			copy(ip[16:], d[:])
			frames[i] = append(ip, payload...)
			continue
		}
		ip := make([]byte, ip6Len, ip6Len+len(payload))
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(payload)))
		ip[6], ip[7] = 17, 64
		copy(ip[8:14], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff})
		binary.BigEndian.PutUint64(ip[16:24], h)
		d := server6.As16()
		copy(ip[24:], d[:])
		frames[i] = append(ip, payload...)
	}
	return frames
}

// BenchmarkUDPHit is the price of capturing all UDP (issue 11): with a
// door that has UDP steps the filter passes every datagram to this host,
// and each costs user space a decode and one Observe of both matchers, as
// in the daemon's loop. The datagrams come from 64Ki distinct sources that
// no sequence tracks (a busy DNS server's clients), so each Observe is one
// index miss per sequence with a UDP step. Doors: those of
// e2e/attack_sweep_test.go.
func BenchmarkUDPHit(b *testing.B) {
	frames := udpFrames(1 << 16)
	p, diags := policy.Parse("bench.hcl", []byte(`interfaces = ["lo"]
door "udp" {
  sequence = ["7000/udp", "8000/udp", "9000/udp"]
  open     = ["2222/tcp"]
}
door "mixed" {
  sequence = ["30000/tcp", "31000/udp", "32000/tcp"]
  open     = ["2223/tcp"]
}
door "fin" {
  sequence  = ["12000/tcp", "13000/tcp", "14000/tcp"]
  tcp_flags = "fin,!ack"
  open      = ["2224/tcp"]
}
door "syn" {
  sequence = ["20000/tcp", "21000/tcp", "22000/tcp"]
  open     = ["2225/tcp"]
}
`))
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	m := knock.New(p, knock.Config{})
	tm := knock.NewTOTP(p, knock.Config{})
	now := time.Unix(1e9, 0)
	var h knock.Hit
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !capture.Decode(frames[i&(len(frames)-1)], &h) {
			b.Fatal("frame does not decode")
		}
		now = now.Add(time.Microsecond)
		if len(m.Observe(h, now))+len(tm.Observe(h, now)) != 0 {
			b.Fatal("a decision for an untracked source")
		}
	}
}

package spoof

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBuild: headers carry the fields asked for, and the IPv4 header and
// TCP/UDP checksums verify (the sum over a checked header is 0xffff).
func TestBuild(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		p        Packet
		ipLen    int
		ethType  uint16
		pseudoAt [2]int // the addresses in the IP header
	}{
		{"tcp4", Packet{Src: netip.MustParseAddr("198.18.1.2"), Dst: netip.MustParseAddr("192.0.2.1"), Proto: unix.IPPROTO_TCP,
			SrcPort: 40000, DstPort: 7000, Flags: SYN, Seq: 7}, 20, unix.ETH_P_IP, [2]int{12, 20}},
		{"udp4", Packet{Src: netip.MustParseAddr("198.18.1.2"), Dst: netip.MustParseAddr("192.0.2.1"), Proto: unix.IPPROTO_UDP,
			SrcPort: 40000, DstPort: 8000}, 20, unix.ETH_P_IP, [2]int{12, 20}},
		{"tcp6", Packet{Src: netip.MustParseAddr("2001:db8:ff::1"), Dst: netip.MustParseAddr("2001:db8:1::1"), Proto: unix.IPPROTO_TCP,
			SrcPort: 40000, DstPort: 22, Flags: ACK, Seq: 1, Ack: 99, Window: 1024}, 40, unix.ETH_P_IPV6, [2]int{8, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sender
			n, err := s.build(&tc.p)
			if err != nil {
				t.Fatal(err)
			}
			f := s.frame[:n]
			if got := binary.BigEndian.Uint16(f[12:]); got != tc.ethType {
				t.Errorf("ethertype %#x, want %#x", got, tc.ethType)
			}
			ip, l4 := f[14:14+tc.ipLen], f[14+tc.ipLen:]
			if tc.ipLen == 20 && Checksum(0, ip) != 0 {
				t.Errorf("IPv4 header checksum does not verify")
			}
			pseudo := sum16(0, ip[tc.pseudoAt[0]:tc.pseudoAt[1]]) + uint32(tc.p.Proto) + uint32(len(l4))
			if Checksum(pseudo, l4) != 0 {
				t.Errorf("%s checksum does not verify", tc.name)
			}
			if binary.BigEndian.Uint16(l4[2:]) != tc.p.DstPort {
				t.Errorf("dport %d, want %d", binary.BigEndian.Uint16(l4[2:]), tc.p.DstPort)
			}
			if tc.p.Proto == unix.IPPROTO_TCP && (l4[13] != tc.p.Flags || binary.BigEndian.Uint32(l4[8:]) != tc.p.Ack) {
				t.Errorf("tcp flags %#x ack %d, want %#x %d", l4[13], binary.BigEndian.Uint32(l4[8:]), tc.p.Flags, tc.p.Ack)
			}
		})
	}
	var s Sender
	if _, err := s.build(&Packet{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("2001:db8::1"), Proto: unix.IPPROTO_TCP}); err == nil {
		t.Error("mixed families: want an error")
	}
}

func TestSendAllocs(t *testing.T) {
	var s Sender
	p := Packet{Src: netip.MustParseAddr("198.18.1.2"), Dst: netip.MustParseAddr("192.0.2.1"), Proto: unix.IPPROTO_TCP, DstPort: 22}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.build(&p) }); n != 0 {
		t.Errorf("build allocates %v times", n)
	}
}

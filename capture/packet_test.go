package capture

import (
	"encoding/binary"
	"net/netip"
)

// testPkt describes an IP packet for tests; build returns its bytes from
// the IP header on.
type testPkt struct {
	src, dst   netip.Addr // the family decides IPv4 or IPv6
	proto      uint8      // 6, 17, or anything else (8 bytes of payload)
	sport      uint16
	dport      uint16
	flags      uint8   // TCP flags
	fragOff    uint16  // fragment offset in 8-octet units
	moreFrags  bool    // MF flag
	ipv4Opts   int     // bytes of IPv4 options (multiple of 4)
	ext        []uint8 // IPv6 extension headers, in order (0, 43, 44, 51, 60)
	extLen     int     // 8-octet units beyond the first, for 0/43/60 headers
	payload    int     // bytes after the L4 header
	truncateTo int     // if > 0, cut the result to this many bytes
	tcpDoff    uint8   // TCP data offset in words; 0 means 5
	rawL4      []byte  // if set, used instead of a built L4 header
}

var (
	v4a = netip.MustParseAddr("198.51.100.2")
	v4b = netip.MustParseAddr("192.0.2.1")
	v6a = netip.MustParseAddr("2001:db8::2")
	v6b = netip.MustParseAddr("2001:db8::1")
)

func (p testPkt) l4() []byte {
	if p.rawL4 != nil {
		return p.rawL4
	}
	var h []byte
	switch p.proto {
	case 6:
		h = make([]byte, 20)
		doff := p.tcpDoff
		if doff == 0 {
			doff = 5
		}
		h[12] = doff << 4
		h[13] = p.flags
	case 17:
		h = make([]byte, 8)
		binary.BigEndian.PutUint16(h[4:], uint16(8+p.payload))
	default:
		h = make([]byte, 8)
	}
	binary.BigEndian.PutUint16(h[0:], p.sport)
	binary.BigEndian.PutUint16(h[2:], p.dport)
	return append(h, make([]byte, p.payload)...)
}

func (p testPkt) build() []byte {
	l4 := p.l4()
	var b []byte
	if p.src.Is4() {
		ihl := 20 + p.ipv4Opts
		b = make([]byte, ihl, ihl+len(l4))
		b[0] = 0x40 | uint8(ihl/4)
		binary.BigEndian.PutUint16(b[2:], uint16(ihl+len(l4)))
		frag := p.fragOff & 0x1fff
		if p.moreFrags {
			frag |= 0x2000
		}
		binary.BigEndian.PutUint16(b[6:], frag)
		b[8] = 64
		b[9] = p.proto
		s, d := p.src.As4(), p.dst.As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		b = append(b, l4...)
	} else {
		b = make([]byte, 40)
		b[0] = 0x60
		b[7] = 64
		s, d := p.src.As16(), p.dst.As16()
		copy(b[8:], s[:])
		copy(b[24:], d[:])
		next := &b[6]
		for _, e := range p.ext {
			*next = e
			var h []byte
			switch e {
			case 44:
				h = make([]byte, 8)
				frag := p.fragOff << 3
				if p.moreFrags {
					frag |= 1
				}
				binary.BigEndian.PutUint16(h[2:], frag)
			case 51:
				h = make([]byte, 12) // payload len 1: (1+2)*4
				h[1] = 1
			default:
				h = make([]byte, 8+8*p.extLen)
				h[1] = uint8(p.extLen)
				h[2] = 1 // PadN, so the options are well-formed
				h[3] = uint8(len(h) - 4)
			}
			off := len(b)
			b = append(b, h...)
			next = &b[off]
		}
		*next = p.proto
		b = append(b, l4...)
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	}
	if p.truncateTo > 0 && p.truncateTo < len(b) {
		b = b[:p.truncateTo]
	}
	return b
}

// frame wraps an IP packet in an Ethernet header whose destination MAC ends
// in pkttype (the rawTest convention).
func frame(pkttype uint8, etherType uint16, ip []byte) []byte {
	f := make([]byte, 14, 14+len(ip))
	copy(f, []byte{0x02, 0, 0, 0, 0, pkttype, 0x02, 0, 0, 0, 0, 0x99})
	binary.BigEndian.PutUint16(f[12:], etherType)
	return append(f, ip...)
}

func ipFrame(p testPkt) []byte {
	et := uint16(etherIPv4)
	if p.src.Is6() {
		et = etherIPv6
	}
	return frame(pktHost, et, p.build())
}

package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// maxExtHeaders bounds the IPv6 extension header walk.
//
// h.Payload is set to the UDP payload when the buffer holds all of it (as
// it does for SPA ports, whose filter snap length is snapSPA), and to nil
// for TCP, for an empty payload and for a truncated one. It ALIASES b: it is
// valid only until b is reused (for a Conn, until the next ReadHit), and
// must never be kept or sent to another goroutine; copy what must outlive
// the read.
const maxExtHeaders = 8

// Decode parses one datagram, starting at the IP header as read from a
// packet.Datagram socket, into h (Src, Dst, Proto, Port, Flags; At is left
// alone). It returns false for anything that is not a usable knock hit:
// not IPv4/IPv6, a malformed or truncated header, a protocol other than TCP
// or UDP, or a non-first fragment (which carries no ports); h is then left
// unchanged. IPv6 extension headers (hop-by-hop, routing, fragment, AH,
// destination options, mobility, HIP, shim6) are walked, at most
// maxExtHeaders of them. It is pure and does not allocate.
func Decode(b []byte, h *knock.Hit) bool {
	if len(b) < 1 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		return decode4(b, h)
	case 6:
		return decode6(b, h)
	}
	return false
}

func decode4(b []byte, h *knock.Hit) bool {
	if len(b) < 20 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || ihl > len(b) || total < ihl {
		return false
	}
	if binary.BigEndian.Uint16(b[6:8])&ipv4FragOff != 0 {
		return false
	}
	if !decodeL4(b[ihl:], total-ihl, policy.Proto(b[9]), h) {
		return false
	}
	h.Src = netip.AddrFrom4([4]byte(b[12:16]))
	h.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	return true
}

func decode6(b []byte, h *knock.Hit) bool {
	if len(b) < 40 {
		return false
	}
	// end is where the packet ends according to its header; the buffer
	// may stop earlier (snap length).
	end := 40 + int(binary.BigEndian.Uint16(b[4:6]))
	next, off := b[6], 40
	for range maxExtHeaders + 1 {
		switch next {
		case uint8(policy.TCP), uint8(policy.UDP):
			if off > len(b) {
				return false
			}
			if !decodeL4(b[off:], end-off, policy.Proto(next), h) {
				return false
			}
			h.Src = netip.AddrFrom16([16]byte(b[8:24]))
			h.Dst = netip.AddrFrom16([16]byte(b[24:40]))
			return true
		case 0, 43, 60, 135, 139, 140: // length in 8-octet units, not counting the first
			if off+2 > len(b) {
				return false
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
		case 44: // fragment
			if off+8 > len(b) {
				return false
			}
			if binary.BigEndian.Uint16(b[off+2:off+4])&0xfff8 != 0 {
				return false
			}
			next, off = b[off], off+8
		case 51: // AH: length in 4-octet units, not counting the first two
			if off+2 > len(b) {
				return false
			}
			next, off = b[off], off+(int(b[off+1])+2)*4
		default:
			return false
		}
		if off > end {
			return false
		}
	}
	return false
}

// decodeL4 parses the TCP or UDP header at the start of b; l4len is its
// length according to the IP header (b may be shorter: snap length).
func decodeL4(b []byte, l4len int, proto policy.Proto, h *knock.Hit) bool {
	switch proto {
	case policy.TCP:
		if len(b) < 20 || l4len < 20 {
			return false
		}
		if doff := int(b[12]>>4) * 4; doff < 20 || doff > l4len {
			return false
		}
		h.Flags = b[13]
		h.Payload = nil
	case policy.UDP:
		if len(b) < 8 || l4len < 8 {
			return false
		}
		ulen := int(binary.BigEndian.Uint16(b[4:6]))
		if ulen < 8 || ulen > l4len {
			return false
		}
		h.Flags = 0
		h.Payload = nil
		if ulen > 8 && ulen <= len(b) {
			h.Payload = b[8:ulen:ulen]
		}
	default:
		return false
	}
	h.Proto = proto
	h.Port = binary.BigEndian.Uint16(b[2:4])
	return true
}

package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// withPayload gives h the n zero bytes that testPkt puts after a header.
func withPayload(h *knock.Hit, n int) *knock.Hit {
	h.Payload = make([]byte, n)
	return h
}

// TestDecodePayloadAliases checks that the payload is the packet's own
// bytes, not a copy, and that TCP never has one.
func TestDecodePayloadAliases(t *testing.T) {
	b := testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 200}.build()
	copy(b[28:], "hello")
	var h knock.Hit
	if !Decode(b, &h) || string(h.Payload[:5]) != "hello" || len(h.Payload) != 200 || cap(h.Payload) != 200 {
		t.Fatalf("payload = %q (len %d cap %d)", h.Payload[:min(5, len(h.Payload))], len(h.Payload), cap(h.Payload))
	}
	b[28] = 'j'
	if h.Payload[0] != 'j' {
		t.Error("Payload is a copy; want it to alias the buffer")
	}
	if !Decode(testPkt{src: v4a, dst: v4b, proto: 6, dport: 62201, flags: syn, payload: 20}.build(), &h) || h.Payload != nil {
		t.Errorf("TCP hit has payload %q, want nil", h.Payload)
	}
	if n := testing.AllocsPerRun(100, func() { Decode(b, &h) }); n != 0 {
		t.Errorf("Decode of a UDP packet with payload allocates %v times", n)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	hit := func(src, dst netip.Addr, proto policy.Proto, port uint16, flags uint8) *knock.Hit {
		return &knock.Hit{Src: src, Dst: dst, Proto: proto, Port: port, Flags: flags}
	}
	badIHL := testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()
	badIHL[0] = 0x44
	bigIHL := testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()
	bigIHL[0] = 0x4f
	shortTotal := testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()
	binary.BigEndian.PutUint16(shortTotal[2:], 30)
	badUDPLen := testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000}.build()
	binary.BigEndian.PutUint16(badUDPLen[24:], 200)
	for _, tt := range []struct {
		name string
		in   []byte
		want *knock.Hit // nil: rejected
	}{
		{"v4 SYN", testPkt{src: v4a, dst: v4b, proto: 6, sport: 40000, dport: 7000, flags: syn}.build(), hit(v4a, v4b, policy.TCP, 7000, syn)},
		{"v4 UDP", testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, payload: 3}.build(), withPayload(hit(v4a, v4b, policy.UDP, 8000, 0), 3)},
		{"v4 UDP snapped payload", testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, payload: 300, truncateTo: snapPlain}.build(), hit(v4a, v4b, policy.UDP, 8000, 0)},
		{"v4 UDP SPA-sized payload", testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 1500, ipv4Opts: 40}.build(), withPayload(hit(v4a, v4b, policy.UDP, 62201, 0), 1500)},
		{"v6 UDP SPA-sized payload", testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, payload: 1500, ext: []uint8{0}}.build(), withPayload(hit(v6a, v6b, policy.UDP, 62201, 0), 1500)},
		{"v4 options", testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: ack, ipv4Opts: 40}.build(), hit(v4a, v4b, policy.TCP, 22, ack)},
		{"v4 first fragment", testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, moreFrags: true}.build(), hit(v4a, v4b, policy.UDP, 8000, 0)},
		{"v4 non-first fragment", testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, fragOff: 185}.build(), nil},
		{"v4 ICMP", testPkt{src: v4a, dst: v4b, proto: 1}.build(), nil},
		{"v4 IHL < 5", badIHL, nil},
		{"v4 IHL past buffer", bigIHL, nil},
		{"v4 total length < header", shortTotal, nil},
		{"v4 UDP length > packet", badUDPLen, nil},
		{"v4 TCP data offset < 5", testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, tcpDoff: 4}.build(), nil},
		{"v4 TCP data offset > segment", testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, tcpDoff: 15}.build(), nil},
		{"v4 truncated TCP", testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, truncateTo: 33}.build(), nil},
		{"v4 snapped payload", testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, payload: 500, truncateTo: snapPlain}.build(), hit(v4a, v4b, policy.TCP, 7000, syn)},
		{"v6 SYN", testPkt{src: v6a, dst: v6b, proto: 6, dport: 9000, flags: syn}.build(), hit(v6a, v6b, policy.TCP, 9000, syn)},
		{"v6 UDP", testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000}.build(), hit(v6a, v6b, policy.UDP, 8000, 0)},
		{"v6 hop-by-hop, routing, dest-opts", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0, 43, 60}, extLen: 2}.build(), hit(v6a, v6b, policy.TCP, 7000, syn)},
		{"v6 AH", testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{51}}.build(), hit(v6a, v6b, policy.UDP, 8000, 0)},
		{"v6 first fragment", testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{0, 44}, moreFrags: true}.build(), hit(v6a, v6b, policy.UDP, 8000, 0)},
		{"v6 non-first fragment", testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{44}, fragOff: 1}.build(), nil},
		{"v6 non-first fragment after hop-by-hop", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0, 44}, fragOff: 100}.build(), nil},
		{"v6 chain of 8", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0, 60, 60, 60, 60, 60, 60, 60}}.build(), hit(v6a, v6b, policy.TCP, 7000, syn)},
		{"v6 chain of 9", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0, 60, 60, 60, 60, 60, 60, 60, 60}}.build(), nil},
		{"v6 extension past buffer", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0}, extLen: 255, truncateTo: snapExt}.build(), nil},
		{"v6 ICMPv6", testPkt{src: v6a, dst: v6b, proto: 58}.build(), nil},
		{"v6 truncated header", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, truncateTo: 39}.build(), nil},
		{"empty", nil, nil},
		{"version 5", []byte{0x50, 0, 0, 0}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h knock.Hit
			ok := Decode(tt.in, &h)
			if tt.want == nil {
				if ok {
					t.Fatalf("Decode = true (%+v), want false", h)
				}
				if diff := cmp.Diff(knock.Hit{}, h, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
					t.Errorf("rejected packet changed the hit (-want +got):\n%s", diff)
				}
				return
			}
			if !ok {
				t.Fatal("Decode = false, want a hit")
			}
			if diff := cmp.Diff(*tt.want, h, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("hit (-want +got):\n%s", diff)
			}
		})
	}
}

// refDecode is an independent, deliberately plain re-parse: a cursor that
// fails on any short read. It returns the hit and whether the packet is a
// usable hit, and separately whether any fragment header or IPv4 header of
// the packet says it is a non-first fragment.
func refDecode(b []byte) (h knock.Hit, ok, laterFrag bool) {
	r := reader{b: b}
	v := r.u8(0) >> 4
	var proto uint8
	var end int
	switch v {
	case 4:
		ihl := int(r.u8(0)&15) << 2
		total := int(r.u16(2))
		if r.u16(6)&0x1fff != 0 {
			laterFrag = r.err == nil
		}
		src, dst := r.bytes(12, 4), r.bytes(16, 4)
		if r.err != nil || laterFrag || ihl < 20 || total < ihl || ihl > len(b) {
			return h, false, laterFrag
		}
		h.Src, _ = netip.AddrFromSlice(src)
		h.Dst, _ = netip.AddrFromSlice(dst)
		proto, r.off, end = r.u8(9), ihl, total
	case 6:
		src, dst := r.bytes(8, 16), r.bytes(24, 16)
		end = 40 + int(r.u16(4))
		proto, r.off = r.u8(6), 40
		for n := 0; r.err == nil && proto != 6 && proto != 17; n++ {
			if n == maxExtHeaders {
				return h, false, laterFrag
			}
			var size int
			switch proto {
			case 0, 43, 60, 135, 139, 140:
				size = 8 + 8*int(r.u8(1))
			case 51:
				size = 4*int(r.u8(1)) + 8
			case 44:
				size = 8
				if r.u16(2)>>3 != 0 {
					laterFrag = r.err == nil
				}
			default:
				return h, false, laterFrag
			}
			proto = r.u8(0)
			r.off += size
			if r.off > end {
				r.err = errors.New("past payload")
			}
		}
		if r.err != nil || laterFrag {
			return h, false, laterFrag
		}
		h.Src, _ = netip.AddrFromSlice(src)
		h.Dst, _ = netip.AddrFromSlice(dst)
	default:
		return h, false, false
	}
	l4len := end - r.off
	h.Port = r.u16(2)
	switch proto {
	case 6:
		h.Proto = policy.TCP
		doff := int(r.u8(12)>>4) * 4
		h.Flags = r.u8(13)
		r.bytes(0, 20)
		if doff < 20 || doff > l4len {
			return h, false, false
		}
	case 17:
		h.Proto = policy.UDP
		ulen := int(r.u16(4))
		r.bytes(0, 8)
		if ulen < 8 || ulen > l4len {
			return h, false, false
		}
		if start := r.off + 8; ulen > 8 && start-8+ulen <= len(b) {
			h.Payload = b[start : start-8+ulen]
		}
	default:
		return h, false, false
	}
	return h, r.err == nil, false
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) bytes(at, n int) []byte {
	if r.err != nil || r.off+at+n > len(r.b) || r.off+at < 0 {
		r.err = errors.New("short")
		return make([]byte, n)
	}
	return r.b[r.off+at : r.off+at+n]
}
func (r *reader) u8(at int) uint8   { return r.bytes(at, 1)[0] }
func (r *reader) u16(at int) uint16 { return binary.BigEndian.Uint16(r.bytes(at, 2)) }

func seedPackets() [][]byte {
	var out [][]byte
	for _, p := range []testPkt{
		{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn},
		{src: v4a, dst: v4b, proto: 17, dport: 8000, payload: 4},
		{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, ipv4Opts: 8},
		{src: v4a, dst: v4b, proto: 17, dport: 8000, fragOff: 7},
		{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn},
		{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{0, 43, 44, 51, 60}, extLen: 1},
		{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{0, 44}, fragOff: 9},
	} {
		b := p.build()
		out = append(out, b, b[:len(b)-3], b[:len(b)/2])
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, b := range seedPackets() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h knock.Hit
		ok := Decode(b, &h)
		want, wantOK, laterFrag := refDecode(b)
		if ok && laterFrag {
			t.Fatalf("Decode accepted a non-first fragment: %+v", h)
		}
		if ok != wantOK {
			t.Fatalf("Decode = %v, re-parse = %v (%+v)", ok, wantOK, want)
		}
		if ok {
			if diff := cmp.Diff(want, h, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Fatalf("hit differs from re-parse (-reparse +decode):\n%s", diff)
			}
			if h.Proto == policy.UDP && h.Flags != 0 {
				t.Fatalf("UDP hit with flags %#x", h.Flags)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    testPkt
	}{
		{"v4-tcp", testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}},
		{"v6-tcp", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn}},
		{"v6-ext", testPkt{src: v6a, dst: v6b, proto: 6, dport: 7000, flags: syn, ext: []uint8{0, 60, 44}}},
		{"v4-spa", testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 200}},
	} {
		pkt := bc.p.build()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var h knock.Hit
			for b.Loop() {
				if !Decode(pkt, &h) {
					b.Fatal("Decode = false")
				}
			}
		})
	}
}

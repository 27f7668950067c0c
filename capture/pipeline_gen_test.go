package capture

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

// This file turns FuzzPipeline's bytes into a policy and a stream of
// frames. Most frames are built from a few bytes (family, source, protocol,
// a port chosen among the ones that matter now, flags, header options, one
// corruption), so that the fuzzer reaches the matchers' opens; the rest are
// raw bytes taken verbatim.

// fzIn hands out fuzz bytes, then zeros.
type fzIn []byte

func (b *fzIn) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *fzIn) take(n int) []byte {
	n = min(n, len(*b))
	out := (*b)[:n]
	*b = (*b)[n:]
	return out
}

var (
	fzT0    = time.Unix(1_700_000_010, 0) // 10 s into a 30 s TOTP step
	fzSteps = []policy.PortProto{
		{Port: 7000, Proto: policy.TCP}, {Port: 8000, Proto: policy.UDP}, {Port: 9000, Proto: policy.TCP},
		{Port: 7001, Proto: policy.UDP}, {Port: 8001, Proto: policy.TCP},
	}
	fzFilters = []policy.TCPFlags{
		policy.DefaultTCPFlags,
		{Mask: syn, Want: syn}, // "syn"
		{Mask: policy.FlagFIN | syn | ack, Want: policy.FlagFIN}, // "fin,!syn,!ack"
		{Mask: syn | ack, Want: synAck},                          // "syn,ack"
	}
	fzSecrets = [][]byte{[]byte("alice-secret-0123456789"), []byte("bob-secret-0123456789ab")}
	fzSrc4    = []netip.Addr{
		netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9"),
	}
	fzSrc6 = []netip.Addr{
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"),
		netip.MustParseAddr("::ffff:198.18.0.1"), // the same source as fzSrc4[0], mapped
		netip.MustParseAddr("2001:db8:1::9"),
	}
	fzTCPFlags = []uint8{syn, syn, ack, synAck, policy.FlagFIN, policy.FlagFIN | ack, 0, 0x29, 0x04, syn | policy.FlagFIN}
	// fzWide is a sequence of 1200 knock ports, even ports 30000-31198 of
	// both protocols: enough for the filter's port-range form, whose odd
	// ports pass the filter and are dropped in user space.
	fzWide = func() []policy.PortProto {
		var out []policy.PortProto
		for i := range 600 {
			port := uint16(30000 + 2*i)
			out = append(out, policy.PortProto{Port: port, Proto: policy.TCP}, policy.PortProto{Port: port, Proto: policy.UDP})
		}
		return out
	}()
)

// fzSeq decodes 1..4 steps over fzSteps, without consecutive repeats.
func fzSeq(b *fzIn) []policy.PortProto {
	n := 1 + int(b.next())%4
	var out []policy.PortProto
	for range n {
		s := fzSteps[int(b.next())%len(fzSteps)]
		if len(out) > 0 && out[len(out)-1] == s {
			continue
		}
		out = append(out, s)
	}
	return out
}

// fzPolicy decodes a policy: up to two static doors over fzSteps, a TOTP
// door with a small range, an SPA door, a door with fzWide.
func fzPolicy(b *fzIn) *policy.Policy {
	p := &policy.Policy{}
	shape := b.next()
	open := []policy.PortProto{{Port: 22, Proto: policy.TCP}}
	for i := range int(shape&3) % 3 {
		d := policy.Door{
			Name: string(rune('a' + i)), Sequence: fzSeq(b), Open: open, OpenFor: time.Minute,
			SeqTimeout: time.Duration(1+b.next()%8) * 250 * time.Millisecond,
			TCPFlags:   fzFilters[int(b.next())%len(fzFilters)],
		}
		if b.next()%2 == 1 {
			d.CloseSequence = fzSeq(b)
		}
		p.Doors = append(p.Doors, d)
	}
	if shape&4 != 0 {
		c := b.next()
		width := 2 + int(c%24)
		t := &policy.TOTP{Lo: 20000, Hi: uint16(20000 + width - 1), Length: min(width, 2+int(c>>7)), Step: 30 * time.Second, Skew: int(c>>6) & 1, Proto: policy.TCP}
		if c&0x20 != 0 {
			t.Proto = policy.UDP
		}
		d := policy.Door{
			Name: "totp", TOTP: t, Open: open, OpenFor: time.Minute,
			SeqTimeout: time.Duration(1+b.next()%8) * 500 * time.Millisecond,
			TCPFlags:   fzFilters[int(b.next())%len(fzFilters)],
		}
		for i := range 1 + int(c>>4&1) {
			d.Clients = append(d.Clients, policy.Client{Name: string(rune('x' + i)), Secret: fzSecrets[i]})
		}
		p.Doors = append(p.Doors, d)
	}
	if shape&8 != 0 {
		p.Doors = append(p.Doors, policy.Door{Name: "spa", Open: open, OpenFor: time.Minute, SPA: &policy.SPA{Port: 62201, MaxAge: time.Minute}})
	}
	if shape&16 != 0 {
		p.Doors = append(p.Doors, policy.Door{Name: "wide", Sequence: fzWide, Open: open, OpenFor: time.Minute, SeqTimeout: time.Second, TCPFlags: policy.DefaultTCPFlags})
	}
	return p
}

// fzPorts lists the destination ports that matter at now, in a stable
// order: each TOTP client's current sequence first, then the knock ports,
// the SPA ports, the TOTP range's edges, the wide door's edges and a gap,
// and a few others.
func fzPorts(p *policy.Policy, now time.Time) []uint16 {
	var out []uint16
	for _, d := range p.Doors {
		if t := d.TOTP; t != nil {
			ctr := totp.Counter(now, t.Step)
			for _, c := range d.Clients {
				out = append(out, totp.Sequence(c.Secret, ctr, t.Lo, t.Hi, t.Length)...)
			}
			out = append(out, t.Lo, t.Hi, t.Lo-1, t.Hi+1)
		}
	}
	for _, s := range fzSteps {
		out = append(out, s.Port)
	}
	out = append(out, p.SPAPorts()...)
	out = append(out, 30000, 31198, 29999, 31199, 30001, 22, 53, 0, 65535)
	return out
}

// fzEvent is one frame, or an Expire when frame is nil.
type fzEvent struct {
	now   time.Time
	frame []byte
}

// fzEvents decodes the rest of b into events. Each starts with an op byte:
// the low two bits say what follows (0, 1: a built frame; 2: a raw frame;
// 3: an Expire), the high six the time since the previous event (25 ms
// units; 63 jumps a whole TOTP step).
func fzEvents(b *fzIn, p *policy.Policy) []fzEvent {
	var out []fzEvent
	now := fzT0
	for len(*b) > 0 {
		op := b.next()
		if dt := op >> 2; dt == 63 {
			now = now.Add(30 * time.Second)
		} else {
			now = now.Add(time.Duration(dt) * 25 * time.Millisecond)
		}
		switch op & 3 {
		case 0, 1:
			out = append(out, fzEvent{now, fzFrame(b, p, now)})
		case 2:
			n := int(binary.LittleEndian.Uint16([]byte{b.next(), b.next()})) % 2100
			out = append(out, fzEvent{now, append([]byte(nil), b.take(n)...)})
		case 3:
			out = append(out, fzEvent{now: now})
		}
	}
	return out
}

// fzFrame builds one frame from four to eight bytes.
func fzFrame(b *fzIn, p *policy.Policy, now time.Time) []byte {
	a := b.next()
	tp := testPkt{src: fzSrc4[a>>1&3], dst: v4b}
	if a&1 == 1 {
		tp.src, tp.dst = fzSrc6[a>>1&3], v6b
	}
	switch a >> 3 & 3 {
	case 0, 2:
		tp.proto = 6
	case 1:
		tp.proto = 17
	default:
		tp.proto = 1
		if tp.src.Is6() {
			tp.proto = 58
		}
	}
	switch a >> 5 & 3 {
	case 1:
		tp.ipv4Opts, tp.ext = 8, []uint8{0}
	case 2:
		tp.moreFrags, tp.ext = true, []uint8{44}
	case 3:
		tp.fragOff, tp.ext, tp.extLen = 1, []uint8{0, 60, 43}, 1
	}
	if !tp.src.Is4() {
		tp.ipv4Opts = 0
		if a>>5&3 == 3 {
			tp.fragOff = 0
		}
	} else {
		tp.ext, tp.extLen = nil, 0
	}
	pkttype := uint8(pktHost)
	if a&0x80 != 0 {
		pkttype = b.next() % 5
	}
	if sel := b.next(); sel >= 0xf0 {
		tp.dport = binary.BigEndian.Uint16([]byte{b.next(), b.next()})
	} else {
		ports := fzPorts(p, now)
		tp.dport = ports[int(sel)%len(ports)]
	}
	tp.sport = 40000 + uint16(a)
	if f := b.next(); f < 0xe0 {
		tp.flags = fzTCPFlags[int(f)%len(fzTCPFlags)]
	} else {
		tp.flags = f
	}
	m := b.next()
	if m&3 == 3 {
		tp.payload = int(b.next()) * 8 // up to 2040 bytes: SPA-sized and beyond
	}
	et := uint16(etherIPv4)
	if tp.src.Is6() {
		et = etherIPv6
	}
	if m&4 != 0 { // the other IP ethertype: the version nibble disagrees
		et ^= etherIPv4 ^ etherIPv6
	}
	f := frame(pkttype, et, tp.build())
	switch m & 3 {
	case 1: // flip bits of one byte of the IP packet or beyond
		off, x := int(b.next()), b.next()
		f[14+off%(len(f)-14)] ^= x
	case 2: // cut the frame short
		f = f[:14+int(b.next())%(len(f)-13)]
	}
	return f
}

package capture

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/policy"
)

// Byte counts the filter's accepts return: the kernel copies at most this
// much of a packet to the socket, so big packets are never copied whole.
// A plain IPv4 or IPv6 header plus a TCP header fit in snapPlain (IPv4 with
// options: 60+20 bytes); a packet whose IPv6 next header is an extension
// header gets snapExt bytes so that Decode can walk a chain of up to 68
// bytes of extension headers before a TCP header (80 before UDP): a
// fragment header, hop-by-hop and destination options and an AH header
// together take 48. A longer chain is cut, and Decode rejects it. The
// knock socket's ring frames are sized for the largest snap length
// (knockSnapMax), so the smaller these are, the more packets its ring
// holds.
//
// UDP packets to an SPA port (policy.SPAPorts) go to the SPA socket
// (SPAFilter) with snapSPA bytes: IPv4 with options or IPv6 with an
// extension header chain, UDP, and the largest SPA payload
// (spa.MaxWireLen).
const (
	snapPlain = 128
	snapExt   = 128
	snapSPA   = 2048
)

// maxInstructions is the kernel's limit for a classic BPF program
// (BPF_MAXINSNS).
const maxInstructions = 4096

// Values the kernel reports for ethertype and pkttype.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	pktHost     = 0 // PACKET_HOST
	protoTCP    = uint32(policy.TCP)
	protoUDP    = uint32(policy.UDP)
	ipv4FragOff = 0x1fff
)

// ipv6ExtHeaders are the IPv6 next-header values the filter passes to user
// space for Decode to walk: hop-by-hop, routing, fragment, AH, destination
// options, mobility, HIP, shim6.
var ipv6ExtHeaders = []uint32{0, 43, 44, 51, 60, 135, 139, 140}

// layout says where a socket's packets start and how the filter learns the
// two facts that are not in the IP packet: the ethertype and the pkttype.
type layout struct {
	base      uint32          // offset of the IP header
	etherType bpf.Instruction // loads the ethertype into A
	pktType   bpf.Instruction // loads the pkttype into A
}

// datagram is a packet.Datagram socket: the packet starts at the IP header
// and the kernel's extension loads give ethertype and pkttype.
var datagram = layout{
	base:      0,
	etherType: bpf.LoadExtension{Num: bpf.ExtProto},
	pktType:   bpf.LoadExtension{Num: bpf.ExtType},
}

// Filter returns the classic BPF program for the policy, for a socket in
// packet.Datagram mode (the packet starts at the IP header; the ethertype
// comes from the ExtProto extension, the pkttype from ExtType).
//
// It passes only packets arriving for this host (pkttype PACKET_HOST), IPv4
// or IPv6, that could be a knock step of some door, at any port
// (policy.KnockTraffic): a TCP segment whose flags pass the tcp_flags of a
// door with a TCP step, and every UDP datagram when some door has a UDP
// step. The matcher resets a sequence on every such packet that is not its
// next step (knock/doc.go), so passing them all, not only those to knock
// ports, is what keeps a sweep or a scan in any order from walking a door.
// It also passes every bare TCP SYN (SYN set, ACK clear). UDP to an SPA port
// is not a knock: it goes to the SPA socket (SPAFilter) and this filter
// drops it. Non-first
// IPv4 fragments are dropped. IPv6 packets whose next header is an
// extension header pass to user space, where Decode walks the chain and
// Conn applies the same rule (wantSet). Other accepts copy at most
// snapPlain bytes (snapExt for extension headers).
func Filter(p *policy.Policy) ([]bpf.Instruction, error) {
	return program(p, datagram)
}

// program generates the filter for one layout (the tests' is rawTest, in
// vm_test.go). Layouts share every instruction except the ethertype and
// pkttype loads and the base offset.
//
//	    ld pkttype; jne HOST → drop
//	    ld ethertype; jeq IPv4 → v4; jeq IPv6 → v6; drop
//	v4: ldb proto; tcp/udp or drop; ldh frag; jset 0x1fff → drop
//	    ldxb 4*(ihl); ldb proto; ja l4
//	v6: ldb next; jeq tcp/udp → v6l4; jeq ext... → accept(snapExt); drop
//	v6l4: ldx #40
//	l4: (X = L4 offset, A = proto) jne tcp → udp; ja tcp
//	udp: ldh dport; SPA ports → drop; accept if some door has a UDP step,
//	     else drop
//	tcp: for each flag filter: ldb flags; and mask; jne want → next; accept
//	     drop
//
// The program is a few dozen instructions whatever the ports: four per
// distinct tcp_flags filter (at most 3^6 of them) and two per SPA port.
func program(p *policy.Policy, l layout) ([]bpf.Instruction, error) {
	w := newWantSet(p)
	spaPorts := p.SPAPorts()
	var a asm
	b := l.base

	a.add(l.pktType)
	a.jeq(pktHost, "", "drop")
	a.add(l.etherType)
	a.jeq(etherIPv4, "v4", "")
	a.jeq(etherIPv6, "v6", "drop")

	a.label("v4")
	a.add(bpf.LoadAbsolute{Off: b + 9, Size: 1})
	a.jeq(protoTCP, "v4ok", "")
	a.jeq(protoUDP, "v4ok", "drop")
	a.label("v4ok")
	a.add(bpf.LoadAbsolute{Off: b + 6, Size: 2})
	a.jset(ipv4FragOff, "drop", "")
	a.add(bpf.LoadMemShift{Off: b})
	a.add(bpf.LoadAbsolute{Off: b + 9, Size: 1})
	a.jump("l4")

	a.label("v6")
	a.add(bpf.LoadAbsolute{Off: b + 6, Size: 1})
	a.jeq(protoTCP, "v6l4", "")
	a.jeq(protoUDP, "v6l4", "")
	for _, nh := range ipv6ExtHeaders {
		a.jeq(nh, "ext", "")
	}
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	a.label("ext")
	a.add(bpf.RetConstant{Val: snapExt})
	a.label("v6l4")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})

	a.label("l4")
	a.jeq(protoTCP, "", "udp")
	a.jump("tcp")

	a.label("udp")
	if len(spaPorts) > 0 {
		a.add(bpf.LoadIndirect{Off: b + 2, Size: 2})
		a.spa(spaPorts)
	}
	if w.udp {
		a.add(bpf.RetConstant{Val: snapPlain})
	} else {
		a.add(bpf.RetConstant{Val: 0})
	}

	// TCP: each flag filter is a jne over an accept, so no jump is longer
	// than one instruction whatever the number of filters.
	a.label("tcp")
	for _, f := range w.tcp {
		a.add(bpf.LoadIndirect{Off: b + 13, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(f.Mask)})
		a.add(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(f.Want), SkipTrue: 1})
		a.add(bpf.RetConstant{Val: snapPlain})
	}
	a.add(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// spa drops A (a UDP destination port) when it is an SPA port: those
// packets are the SPA socket's (SPAFilter), never knock hits; other ports
// fall through.
func (a *asm) spa(ports []uint16) {
	for _, p := range ports {
		a.add(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(p), SkipTrue: 1})
		a.add(bpf.RetConstant{Val: 0})
	}
}

// asm is a tiny assembler with forward labels. A jump target "" means the
// next instruction.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fix    []fixup
}

type fixup struct {
	at            int
	cond          bool // JumpIf (8-bit skips) or Jump (32-bit skip)
	jt, jf        string
	cmp           bpf.JumpTest
	val           uint32
	unconditional string
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) cond(c bpf.JumpTest, v uint32, jt, jf string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), cond: true, cmp: c, val: v, jt: jt, jf: jf})
	a.ins = append(a.ins, nil)
}

func (a *asm) jeq(v uint32, jt, jf string)  { a.cond(bpf.JumpEqual, v, jt, jf) }
func (a *asm) jset(v uint32, jt, jf string) { a.cond(bpf.JumpBitsSet, v, jt, jf) }

func (a *asm) jump(to string) {
	a.fix = append(a.fix, fixup{at: len(a.ins), unconditional: to})
	a.ins = append(a.ins, nil)
}

// assemble resolves the labels and checks the kernel's limits.
func (a *asm) assemble() ([]bpf.Instruction, error) {
	skip := func(at int, name string) (int, error) {
		if name == "" {
			return 0, nil
		}
		to, ok := a.labels[name]
		if !ok || to <= at {
			return 0, fmt.Errorf("bpf label %q: not a forward label", name)
		}
		return to - at - 1, nil
	}
	for _, f := range a.fix {
		if !f.cond {
			s, err := skip(f.at, f.unconditional)
			if err != nil {
				return nil, err
			}
			a.ins[f.at] = bpf.Jump{Skip: uint32(s)}
			continue
		}
		st, err := skip(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		sf, err := skip(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if st > 255 || sf > 255 {
			return nil, fmt.Errorf("bpf jump at %d too long (%d, %d)", f.at, st, sf)
		}
		a.ins[f.at] = bpf.JumpIf{Cond: f.cmp, Val: f.val, SkipTrue: uint8(st), SkipFalse: uint8(sf)}
	}
	if len(a.ins) > maxInstructions {
		return nil, fmt.Errorf("bpf program has %d instructions, the limit is %d", len(a.ins), maxInstructions)
	}
	return a.ins, nil
}

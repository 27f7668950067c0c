package capture

import (
	"strconv"

	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/policy"
)

// SPAFilter returns the classic BPF program of an SPA socket (OpenSPA) for
// the policy, in packet.Datagram mode: UDP packets arriving for this host
// (PACKET_HOST) to one of the policy's SPA ports, IPv4 (not a fragment)
// or IPv6, with snapSPA bytes each. It walks up to maxExtHeaders IPv6
// extension headers itself (hop-by-hop, routing, destination options,
// mobility, HIP, shim6, AH, and a first fragment), so that no other packet
// reaches the SPA socket, whatever its headers. Without SPA ports it
// passes nothing.
func SPAFilter(p *policy.Policy) ([]bpf.Instruction, error) {
	return spaProgram(p.SPAPorts(), datagram)
}

// spaProgram generates the SPA filter. X holds the offset of the header
// being looked at (from the IP header), A its protocol number; each step
// of the unrolled IPv6 walk moves X past one extension header. A load past
// the end of the packet ends the program with 0 (drop), in the kernel and
// in the VM, so truncated chains are dropped.
//
//	    ld pkttype; jne HOST → drop
//	    ld ethertype; jeq IPv4 → v4; jeq IPv6 → v6; drop
//	v4: ldb proto; jne udp → drop; ldh frag; jset MF|offset → drop
//	    ldxb 4*(ihl); ja udp
//	v6: ldx #40; ldb next
//	    (maxExtHeaders+1 times) jeq udp → udp; ext header → X past it,
//	    A = its next header; else drop
//	udp: ldh [x+2]; SPA ports → accept(snapSPA); drop
func spaProgram(ports []uint16, l layout) ([]bpf.Instruction, error) {
	var a asm
	b := l.base
	if len(ports) == 0 {
		a.add(bpf.RetConstant{Val: 0})
		return a.assemble()
	}
	a.add(l.pktType)
	a.dropUnless(bpf.JumpEqual, pktHost)
	a.add(l.etherType)
	a.jeq(etherIPv4, "v4", "")
	a.jeq(etherIPv6, "v6", "")
	a.jump("drop")

	a.label("v4")
	a.add(bpf.LoadAbsolute{Off: b + 9, Size: 1})
	a.dropUnless(bpf.JumpEqual, protoUDP)
	a.add(bpf.LoadAbsolute{Off: b + 6, Size: 2})
	a.dropUnless(bpf.JumpBitsNotSet, 0x2000|ipv4FragOff)
	a.add(bpf.LoadMemShift{Off: b})
	a.jump("udp")

	a.label("v6")
	a.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
	a.add(bpf.LoadAbsolute{Off: b + 6, Size: 1})
	for i := range maxExtHeaders + 1 {
		a.extStep(b, i, i == maxExtHeaders)
	}

	a.label("udp")
	a.add(bpf.LoadIndirect{Off: b + 2, Size: 2})
	for _, p := range ports {
		a.add(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(p), SkipTrue: 1})
		a.add(bpf.RetConstant{Val: snapSPA})
	}
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// extStep emits one step of the IPv6 header walk: A is the next header
// and X its offset. UDP jumps to "udp"; an extension header moves X past
// itself and loads its own next header into A; anything else drops. The
// last step only looks for UDP. Far targets are reached by ja, whose skip
// is not limited to 255 instructions.
func (a *asm) extStep(b uint32, i int, last bool) {
	n := "x" + strconv.Itoa(i)
	a.jeq(protoUDP, "", n+"ext")
	a.jump("udp")
	a.label(n + "ext")
	if last {
		a.jump("drop")
		return
	}
	a.jeq(44, n+"frag", "")
	a.jeq(51, n+"ah", "")
	for _, nh := range []uint32{0, 43, 60, 135, 139, 140} {
		a.jeq(nh, n+"opt", "")
	}
	a.jump("drop")

	// Options-like headers: length in 8-octet units, not counting the
	// first. M[0] keeps the next header while X moves on.
	a.label(n + "opt")
	a.add(bpf.LoadIndirect{Off: b, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.add(bpf.LoadIndirect{Off: b + 1, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
	a.jump(n + "move")

	// AH: length in 4-octet units, not counting the first two.
	a.label(n + "ah")
	a.add(bpf.LoadIndirect{Off: b, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.add(bpf.LoadIndirect{Off: b + 1, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 2})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
	a.jump(n + "move")

	// Fragment: 8 bytes; only a first fragment carries the UDP header.
	a.label(n + "frag")
	a.add(bpf.LoadIndirect{Off: b + 2, Size: 2})
	a.dropUnless(bpf.JumpBitsNotSet, 0xfff8)
	a.add(bpf.LoadIndirect{Off: b, Size: 1})
	a.add(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 8})

	// A is the header's length: X += A, A = the saved next header.
	a.label(n + "move")
	a.add(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	a.add(bpf.TAX{})
	a.add(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
}

// dropUnless ends the program with 0 unless A passes the test: a drop
// right where it is decided, so that no jump has to reach a far label.
func (a *asm) dropUnless(c bpf.JumpTest, v uint32) {
	a.add(bpf.JumpIf{Cond: c, Val: v, SkipTrue: 1})
	a.add(bpf.RetConstant{Val: 0})
}

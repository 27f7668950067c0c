package capture

import (
	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/policy"
)

// ranges emits, for each range of proto (TOTP doors' port ranges), a range
// test of A (the destination port): three instructions per range, however
// wide, that accept a port inside it and fall through otherwise.
func (a *asm) ranges(rs []policy.PortRange, proto policy.Proto) {
	for _, r := range rs {
		if r.Proto != proto {
			continue
		}
		a.add(bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(r.Lo), SkipTrue: 2})
		a.add(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(r.Hi), SkipTrue: 1})
		a.add(bpf.RetConstant{Val: snapPlain})
	}
}

// knockSet returns the user-space port set of p: its knock ports and every
// port of its TOTP ranges.
func knockSet(p *policy.Policy) *portSet {
	s := newPortSet(p.KnockPorts())
	for _, r := range p.KnockRanges() {
		for port := uint32(r.Lo); port <= uint32(r.Hi); port++ {
			switch r.Proto {
			case policy.TCP:
				s.tcp[port/64] |= 1 << (port % 64)
			case policy.UDP:
				s.udp[port/64] |= 1 << (port % 64)
			}
		}
	}
	return s
}

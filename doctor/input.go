package doctor

import (
	"slices"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// InputOf returns what p guards: its table, each port some door opens,
// with the doors that open it, each forward target, with the doors that
// forward it, and the outside interfaces of its forward chain
// (p.Interfaces, which the daemon fills with the default-route ones when
// the config leaves them out).
func InputOf(p *policy.Policy) Input {
	in := Input{Table: p.Table, Outside: slices.Clone(p.Interfaces)}
	if p.TableMode == policy.TableSets {
		in.SetsChain, in.SetsForwardChain = nft.SetsChain, nft.SetsForwardChain
	}
	for _, pp := range p.Guarded() {
		port := Port{Proto: uint8(pp.Proto), Port: pp.Port} // policy.Proto is the IP protocol number
		for _, d := range p.Doors {
			if slices.Contains(d.Open, pp) {
				port.Doors = append(port.Doors, d.Name)
				port.Confirm = port.Confirm || d.Confirm && d.Static()
			}
		}
		in.Ports = append(in.Ports, port)
	}
	for _, d := range p.Doors {
		for _, t := range d.Forward {
			i := slices.IndexFunc(in.Forwards, func(f Forward) bool {
				return f.Addr == t.Addr && f.Proto == uint8(t.Proto) && f.Port == t.Port
			})
			if i < 0 {
				in.Forwards = append(in.Forwards, Forward{Addr: t.Addr, Proto: uint8(t.Proto), Port: t.Port})
				i = len(in.Forwards) - 1
			}
			in.Forwards[i].Doors = append(in.Forwards[i].Doors, d.Name)
		}
	}
	return in
}

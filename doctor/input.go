package doctor

import (
	"slices"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// InputOf returns what p guards: its table and each port some door opens,
// with the doors that open it.
func InputOf(p *policy.Policy) Input {
	in := Input{Table: p.Table}
	if p.TableMode == policy.TableSets {
		in.SetsChain = nft.SetsChain
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
	return in
}

package policy

import (
	"fmt"
	"strings"
)

// Summary is a short human description of the policy, as `sesame check`
// prints it: the table, the closed mode, the interfaces, then one line per
// door.
func (p *Policy) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table:      inet %s\n", p.Table)
	fmt.Fprintf(&b, "closed:     %s\n", p.Closed)
	ifs := "default-route interfaces"
	if len(p.Interfaces) > 0 {
		ifs = strings.Join(p.Interfaces, ", ")
	}
	fmt.Fprintf(&b, "interfaces: %s\n", ifs)
	fmt.Fprintf(&b, "doors:      %d\n", len(p.Doors))
	for _, d := range p.Doors {
		if d.SPA != nil {
			fmt.Fprintf(&b, "  %s: spa %s, %d client(s), opens up to %s for %s\n", d.Name, d.SPA, len(d.Clients), FormatPorts(d.Open), fmtDur(d.OpenFor))
			continue
		}
		fmt.Fprintf(&b, "  %s: knock %s within %s", d.Name, FormatPorts(d.Sequence), fmtDur(d.SeqTimeout))
		if d.TCPFlags != DefaultTCPFlags {
			fmt.Fprintf(&b, " (tcp flags %s)", d.TCPFlags)
		}
		fmt.Fprintf(&b, ", opens %s for %s", FormatPorts(d.Open), fmtDur(d.OpenFor))
		if d.Confirm {
			fmt.Fprintf(&b, " once connected within %s", fmtDur(d.ConfirmWithin))
		}
		if d.CloseSequence != nil {
			fmt.Fprintf(&b, ", close %s", FormatPorts(d.CloseSequence))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

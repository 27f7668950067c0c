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
	if p.TableMode == TableSets {
		fmt.Fprintf(&b, "table:      inet %s (yours: sesame keeps only its sets, table_mode = \"sets\")\n", p.Table)
	} else {
		fmt.Fprintf(&b, "table:      inet %s\n", p.Table)
	}
	fmt.Fprintf(&b, "closed:     %s\n", p.Closed)
	ifs := "default-route interfaces"
	if len(p.Interfaces) > 0 {
		ifs = strings.Join(p.Interfaces, ", ")
	}
	fmt.Fprintf(&b, "interfaces: %s\n", ifs)
	fmt.Fprintf(&b, "doors:      %d\n", len(p.Doors))
	for i := range p.Doors {
		b.WriteString("  ")
		p.Doors[i].summary(&b)
		b.WriteByte('\n')
	}
	if p.Fleet != nil {
		p.Fleet.summary(&b, p.Doors)
	}
	return b.String()
}

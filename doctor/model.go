// Package doctor tells whether the rest of the host's firewall lets sesame
// do its job: for each guarded port, whether another base chain would
// still drop a client that knocked (a policy drop without an accept for
// the port, a drop rule), whether something rewrites the packet before
// sesame's input chain sees it (a DNAT or redirect in prerouting, as
// Docker's published ports), whether a notrack rule keeps a confirming
// door's knocker out, and whether an iptables-legacy ruleset holds rules
// beside nftables.
//
// The analysis (Diagnose) is a pure function over a Ruleset, a model of
// the live ruleset that keeps only what the analysis reads; Read fills it
// from the kernel (nftables over netlink, iptables-legacy through its
// getsockopt interface), so the analysis is tested without root.
package doctor

import (
	"fmt"
	"strings"
)

// Ruleset is the host's firewall as the doctor sees it.
type Ruleset struct {
	Tables []Table
	// Legacy lists the iptables-legacy tables (x_tables) that exist in
	// the kernel beside nftables.
	Legacy []LegacyTable
}

// Table is one nftables table.
type Table struct {
	Family string // inet, ip, ip6, arp, bridge, netdev
	Name   string
	Chains []Chain
}

// Chain is one chain; Hook is empty for a regular (non-base) chain.
type Chain struct {
	Name     string
	Hook     string // prerouting, input, forward, output, postrouting, ingress
	Type     string // filter, nat, route
	Priority int32
	Policy   Action // Accept or Drop (base chains)
	Rules    []Rule
}

// Action is what a rule does with a packet it matches.
type Action uint8

const (
	None     Action = iota // no verdict: the next rule
	Accept                 // accept (final in this base chain only)
	Drop                   // drop
	Reject                 // reject (a drop with an answer)
	Jump                   // jump Target, then come back
	Goto                   // goto Target, no coming back
	Return                 // back to the caller, or the base chain's policy
	DNAT                   // dnat: the destination changes before routing
	Redirect               // redirect: to a local port
	Notrack                // notrack: no conntrack entry
	Queue                  // queue to user space
)

func (a Action) String() string {
	return [...]string{"continue", "accept", "drop", "reject", "jump", "goto", "return", "dnat", "redirect", "notrack", "queue"}[a]
}

// Rule is one rule, reduced to what decides whether it applies to a new
// connection to a guarded port from an arbitrary outside client.
type Rule struct {
	Handle uint64
	// Protos are the layer 4 protocols it matches (6 tcp, 17 udp); nil
	// matches any.
	Protos []uint8
	// Ports are the destination ports it matches; nil matches any.
	Ports []PortRange
	// Conds are its other conditions.
	Conds  []Cond
	Action Action
	Target string // the chain of Jump and Goto
	// Text is the rule as nft lists it, when known (for messages).
	Text string
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// CondKind says what a condition tests.
type CondKind uint8

const (
	CondOther     CondKind = iota // anything the doctor cannot evaluate: saddr, limit, marks, xt matches
	CondIif                       // iif / iifname Value
	CondCtState                   // ct state States (bits: 1 invalid, 2 established, 4 related, 8 new, 64 untracked)
	CondFibType                   // fib daddr type Value (local, unicast, broadcast, multicast...)
	CondCtDNAT                    // ct status dnat: the connection was DNATed
	CondOrigDport                 // ct original proto-dst Port: the destination port before any DNAT
)

// ct state bits, as the kernel numbers them.
const (
	CtInvalid     = 1
	CtEstablished = 2
	CtRelated     = 4
	CtNew         = 8
	CtUntracked   = 64
)

// Cond is one condition of a rule.
type Cond struct {
	Kind   CondKind
	Negate bool
	Value  string // CondIif, CondFibType, and CondOther's description
	States uint32 // CondCtState
	Port   uint16 // CondOrigDport
}

// LegacyTable is an iptables-legacy table that the kernel holds.
type LegacyTable struct {
	Family string // ip or ip6
	Name   string // filter, nat, mangle, raw, security
	// Rules counts the rules beyond the built-in chains' policies.
	Rules int
	// DropHooks are the built-in chains whose policy is DROP (INPUT,
	// FORWARD, ...).
	DropHooks []string
}

// Ref names a rule, or a chain's policy (Handle 0, Policy true).
type Ref struct {
	Family, Table, Chain string
	Handle               uint64
	Policy               bool
	Text                 string
}

func (r Ref) String() string {
	s := fmt.Sprintf("table %s %s chain %s", r.Family, r.Table, r.Chain)
	if r.Chain == "" {
		return fmt.Sprintf("table %s %s", r.Family, r.Table)
	}
	if r.Policy {
		return s + " policy drop"
	}
	s += fmt.Sprintf(" rule handle %d", r.Handle)
	if r.Text != "" {
		s += " (" + r.Text + ")"
	}
	return s
}

// describe renders r as nft would list it, roughly, when Text is empty.
func (r Rule) describe() string {
	if r.Text != "" {
		return r.Text
	}
	var b []string
	if len(r.Protos) == 1 {
		b = append(b, "meta l4proto "+protoName(r.Protos[0]))
	} else if len(r.Protos) > 1 {
		var ps []string
		for _, p := range r.Protos {
			ps = append(ps, protoName(p))
		}
		b = append(b, "meta l4proto { "+strings.Join(ps, ", ")+" }")
	}
	if len(r.Ports) > 0 {
		var ps []string
		for _, p := range r.Ports {
			if p.Lo == p.Hi {
				ps = append(ps, fmt.Sprint(p.Lo))
			} else {
				ps = append(ps, fmt.Sprintf("%d-%d", p.Lo, p.Hi))
			}
		}
		if len(ps) == 1 {
			b = append(b, "th dport "+ps[0])
		} else {
			b = append(b, "th dport { "+strings.Join(ps, ", ")+" }")
		}
	}
	for _, c := range r.Conds {
		b = append(b, c.String())
	}
	a := r.Action.String()
	if r.Action == Jump || r.Action == Goto {
		a += " " + r.Target
	}
	if r.Action != None {
		b = append(b, a)
	}
	return strings.Join(b, " ")
}

func (c Cond) String() string {
	neg := ""
	if c.Negate {
		neg = "!= "
	}
	switch c.Kind {
	case CondIif:
		return "iifname " + neg + fmt.Sprintf("%q", c.Value)
	case CondCtState:
		var s []string
		for _, st := range []struct {
			bit  uint32
			name string
		}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}, {CtUntracked, "untracked"}} {
			if c.States&st.bit != 0 {
				s = append(s, st.name)
			}
		}
		return "ct state " + neg + strings.Join(s, ",")
	case CondFibType:
		return "fib daddr type " + neg + c.Value
	case CondCtDNAT:
		return "ct status " + neg + "dnat"
	case CondOrigDport:
		return "ct original proto-dst " + neg + fmt.Sprint(c.Port)
	}
	return c.Value
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}

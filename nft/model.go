package nft

import (
	"fmt"
	"strings"

	"github.com/sesame-knock/sesame/policy"
)

// The model is the one description of sesame's table. Ruleset renders it as
// nft text and ensure.go turns the very same values into netlink objects, so
// what `sesame check --ruleset` prints is what Ensure installs.

// ownerComment marks a table as sesame's: it is the comment of the guarded
// set. Ensure takes a same-named table only when it is empty or its guarded
// set carries this comment (a table built from Ruleset's output has it too);
// anything else is someone else's table and Ensure returns ErrNotOurs.
const ownerComment = "managed by sesame"

// Names of the objects in the table.
// GrantSetSize is how many (address, port) grants each of grants4 and
// grants6 holds. When one is full the kernel refuses the whole transaction
// that adds to it (ENFILE) until elements expire.
const GrantSetSize = 65536

const (
	setGrants4 = "grants4"
	setGrants6 = "grants6"
	setGuarded = "guarded"
	chainInput = "input"

	// grantSetSize is the size of each grant set: the kernel refuses
	// elements beyond it (ENFILE), which bounds memory under a flood.
	grantSetSize = GrantSetSize
	// chainPriority is the input chain's priority: filter - 5, so sesame's
	// verdicts come before a default filter table's.
	chainPriority = -5
)

// field is one part of a concatenated set key, as the packet provides it.
type field uint8

const (
	fieldIPSaddr  field = iota // ip saddr: ipv4_addr
	fieldIP6Saddr              // ip6 saddr: ipv6_addr
	fieldL4Proto               // meta l4proto: inet_proto
	fieldTHDport               // th dport: inet_service
)

// fieldExpr is the field as a rule's match writes it.
func (f field) expr() string {
	return [...]string{"ip saddr", "ip6 saddr", "meta l4proto", "th dport"}[f]
}

// typeName is the field's nft data type, as a set declaration writes it.
func (f field) typeName() string {
	return [...]string{"ipv4_addr", "ipv6_addr", "inet_proto", "inet_service"}[f]
}

// size is the field's length in bytes (before padding to 32 bits).
func (f field) size() int { return [...]int{4, 16, 1, 2}[f] }

// setModel is one named set.
type setModel struct {
	name    string
	key     []field
	size    uint32 // 0: none
	timeout bool   // flags timeout: elements may carry their own timeout
	comment string
	elems   []policy.PortProto // static elements; only guarded has them
}

// matchKind says what a match tests.
type matchKind uint8

const (
	matchLookup  matchKind = iota // key fields (!=) @set
	matchCtState                  // ct state established,related
	matchL4Proto                  // meta l4proto PROTO
)

type match struct {
	kind   matchKind
	key    []field // matchLookup
	set    string  // matchLookup
	invert bool    // matchLookup
	proto  policy.Proto
}

// verdict ends a rule.
type verdict uint8

const (
	verdictAccept verdict = iota
	verdictDrop
	verdictRejectTCPReset // reject with tcp reset
	verdictRejectICMPX    // reject (icmpx port-unreachable)
)

type ruleModel struct {
	matches []match
	verdict verdict
}

// chainModel is the base chain; it always hooks input as a filter chain
// with policy accept: only guarded ports are ever shut.
type chainModel struct {
	name     string
	priority int32
	rules    []ruleModel
}

type model struct {
	table string
	sets  []setModel
	chain chainModel
}

// grantKey returns the key of the grant set for an address family.
func grantKey(v6 bool) []field {
	if v6 {
		return []field{fieldIP6Saddr, fieldL4Proto, fieldTHDport}
	}
	return []field{fieldIPSaddr, fieldL4Proto, fieldTHDport}
}

// buildModel describes the table that policy p asks for.
func buildModel(p *policy.Policy) model {
	table := p.Table
	if table == "" {
		table = policy.DefaultTable
	}
	guardKey := []field{fieldL4Proto, fieldTHDport}
	m := model{
		table: table,
		sets: []setModel{
			{name: setGrants4, key: grantKey(false), size: grantSetSize, timeout: true},
			{name: setGrants6, key: grantKey(true), size: grantSetSize, timeout: true},
			{name: setGuarded, key: guardKey, comment: ownerComment, elems: p.Guarded()},
		},
		chain: chainModel{name: chainInput, priority: chainPriority},
	}
	accept := func(ms ...match) ruleModel { return ruleModel{matches: ms, verdict: verdictAccept} }
	m.chain.rules = []ruleModel{
		accept(match{kind: matchLookup, key: guardKey, set: setGuarded, invert: true}),
		accept(match{kind: matchCtState}),
		accept(match{kind: matchLookup, key: grantKey(false), set: setGrants4}),
		accept(match{kind: matchLookup, key: grantKey(true), set: setGrants6}),
	}
	if p.Closed == policy.ClosedReject {
		m.chain.rules = append(m.chain.rules,
			ruleModel{matches: []match{{kind: matchL4Proto, proto: policy.TCP}}, verdict: verdictRejectTCPReset},
			ruleModel{verdict: verdictRejectICMPX})
	} else {
		m.chain.rules = append(m.chain.rules, ruleModel{verdict: verdictDrop})
	}
	return m
}

// Ruleset returns the nftables table that Ensure installs for p, in the
// syntax of `nft list table inet NAME` (nft -f accepts it). Grant elements
// are live state, not configuration, so the grant sets are shown empty.
func Ruleset(p *policy.Policy) string { return buildModel(p).render() }

func (m model) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", m.table)
	for _, s := range m.sets {
		s.render(&b)
		b.WriteString("\n")
	}
	m.chain.render(&b)
	b.WriteString("}\n")
	return b.String()
}

func (s setModel) render(b *strings.Builder) {
	types := make([]string, len(s.key))
	for i, f := range s.key {
		types[i] = f.typeName()
	}
	fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n", s.name, strings.Join(types, " . "))
	if s.size != 0 {
		fmt.Fprintf(b, "\t\tsize %d\n", s.size)
	}
	if s.timeout {
		b.WriteString("\t\tflags timeout\n")
	}
	if s.comment != "" {
		fmt.Fprintf(b, "\t\tcomment %q\n", s.comment)
	}
	if len(s.elems) > 0 {
		elems := make([]string, len(s.elems))
		for i, e := range s.elems {
			elems[i] = fmt.Sprintf("%s . %d", e.Proto, e.Port)
		}
		// nft puts each concatenated element on its own line.
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ",\n\t\t\t     "))
	}
	b.WriteString("\t}\n")
}

func (c chainModel) render(b *strings.Builder) {
	prio := "filter"
	switch {
	case c.priority < 0:
		prio = fmt.Sprintf("filter - %d", -c.priority)
	case c.priority > 0:
		prio = fmt.Sprintf("filter + %d", c.priority)
	}
	fmt.Fprintf(b, "\tchain %s {\n\t\ttype filter hook input priority %s; policy accept;\n", c.name, prio)
	for _, r := range c.rules {
		fmt.Fprintf(b, "\t\t%s\n", r.render())
	}
	b.WriteString("\t}\n")
}

func (r ruleModel) render() string {
	var parts []string
	for _, m := range r.matches {
		parts = append(parts, m.render())
	}
	parts = append(parts, [...]string{"accept", "drop", "reject with tcp reset", "reject"}[r.verdict])
	return strings.Join(parts, " ")
}

func (m match) render() string {
	switch m.kind {
	case matchCtState:
		return "ct state established,related"
	case matchL4Proto:
		return "meta l4proto " + m.proto.String()
	}
	exprs := make([]string, len(m.key))
	for i, f := range m.key {
		exprs[i] = f.expr()
	}
	op := "@"
	if m.invert {
		op = "!= @"
	}
	return strings.Join(exprs, " . ") + " " + op + m.set
}

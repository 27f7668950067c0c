package nft

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

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

const (
	setGuarded = "guarded"
	chainInput = "input"

	// chainPriority is the input chain's priority: filter - 5, so sesame's
	// verdicts come before a default filter table's.
	chainPriority = -5

	// loopbackIndex is the loopback interface's index in every network
	// namespace.
	loopbackIndex = 1
)

// field is one part of a concatenated set key, as the packet provides it.
type field uint8

const (
	fieldIPSaddr  field = iota // ip saddr: ipv4_addr
	fieldIP6Saddr              // ip6 saddr: ipv6_addr
	fieldL4Proto               // meta l4proto: inet_proto
	fieldTHDport               // th dport: inet_service
	fieldTCPDport              // tcp dport: inet_service, only for tcp
	fieldUDPDport              // udp dport: inet_service, only for udp
	fieldIifname               // iifname: ifname (the forward chain's outside set)
)

// fieldExpr is the field as a rule's match writes it.
func (f field) expr() string {
	return [...]string{"ip saddr", "ip6 saddr", "meta l4proto", "th dport", "tcp dport", "udp dport", "iifname"}[f]
}

// typeName is the field's nft data type, as a set declaration writes it.
func (f field) typeName() string {
	return [...]string{"ipv4_addr", "ipv6_addr", "inet_proto", "inet_service", "inet_service", "inet_service", "ifname"}[f]
}

// size is the field's length in bytes (before padding to 32 bits).
func (f field) size() int { return [...]int{4, 16, 1, 2, 2, 2, 16}[f] }

// setModel is one named set.
type setModel struct {
	name    string
	key     []field
	size    uint32 // 0: none
	timeout bool   // flags timeout: elements may carry their own timeout
	dynamic bool   // flags dynamic: a rule updates it (a confirming door's open sets)
	comment string
	elems   []policy.PortProto // static elements of guarded
	names   []string           // static elements of outside (interface names)

	// A door's grant set: its kind, family and door.
	kind Kind
	v6   bool
	door string
}

// isGrant reports whether s holds grants (live state, never flushed).
func (s setModel) isGrant() bool { return s.door != "" }

// matchKind says what a match tests.
type matchKind uint8

const (
	matchLookup      matchKind = iota // key fields (!=) @set
	matchCtState                      // ct state STATES
	matchCtOrig                       // ct direction original
	matchCtAssured                    // ct status assured
	matchL4Proto                      // meta l4proto PROTO
	matchLoopback                     // iif "lo"
	matchCtDNAT                       // ct status dnat
	matchCtOrigDaddr                  // ct original ip daddr ADDR (ip6 for IPv6)
	matchCtOrigDport                  // ct original proto-dst PORT (after a meta l4proto match)
)

// ct state bits, as the kernel and nft number them.
const (
	ctEstablished = 2
	ctRelated     = 4
	ctNew         = 8
)

type match struct {
	kind   matchKind
	key    []field // matchLookup
	set    string  // matchLookup
	invert bool    // matchLookup
	proto  policy.Proto
	states uint32     // matchCtState
	addr   netip.Addr // matchCtOrigDaddr
	port   uint16     // matchCtOrigDport
}

// update is a rule's `update @set { key timeout T }`: it adds the packet's
// key to set, or restarts the timer of the element that is there.
type update struct {
	key     []field
	set     string
	timeout time.Duration
}

// verdict ends a rule.
type verdict uint8

const (
	verdictAccept verdict = iota
	verdictDrop
	verdictRejectTCPReset // reject with tcp reset
	verdictRejectICMPX    // reject (icmpx port-unreachable)
	verdictNone           // no verdict: the packet goes on to the next rule
	verdictReturn         // return: back to the chain that jumped here (sets mode's chain)
)

type ruleModel struct {
	matches []match
	update  *update
	verdict verdict
}

// chainModel is a base chain: a filter chain with policy accept on its
// hook (input, or forward for forward doors): only guarded ports and
// forwarded services are ever shut.
type chainModel struct {
	name     string
	hook     string // "input" or "forward"
	priority int32
	rules    []ruleModel
	regular  bool      // no hook: sets mode's chain, which the admin's input (forward) chain jumps to
	targets  [][]match // the forward chain's: each target's matches (sets mode's per-target accept)
}

type model struct {
	table   string
	sets    []setModel
	chain   chainModel  // input
	forward *chainModel // nil when no door has forward targets
	// setsOnly: table_mode = "sets": only the sets are installed; the
	// chains are what Ruleset prints for the admin to paste.
	setsOnly bool
}

// grantKey returns the key of a grant set for an address family.
func grantKey(v6 bool) []field {
	if v6 {
		return []field{fieldIP6Saddr, fieldL4Proto, fieldTHDport}
	}
	return []field{fieldIPSaddr, fieldL4Proto, fieldTHDport}
}

// confirmKey is grantKey with the port field of one protocol: a rule that
// matches ct status assured (TCP only) says `tcp dport`, and nft lists it so.
func confirmKey(v6 bool, proto policy.Proto) []field {
	k := grantKey(v6)
	k[2] = fieldTCPDport
	if proto == policy.UDP {
		k[2] = fieldUDPDport
	}
	return k
}

// confirms reports whether door d's knocks go to its pending sets.
func confirms(d *policy.Door) bool { return d.Confirm && d.Static() }

// doorSets returns door d's grant sets: open and manual per family, and
// for a confirming door the pending ones; none for a door that opens no
// port of this host (only forward targets).
func doorSets(d *policy.Door) []setModel {
	if len(d.Open) == 0 {
		return nil
	}
	size := uint32(d.MaxGrants)
	if size == 0 {
		size = policy.DefaultMaxGrants
	}
	kinds := []Kind{Open, Manual}
	if confirms(d) {
		kinds = append(kinds, Pending)
	}
	var out []setModel
	for _, k := range kinds {
		for _, v6 := range []bool{false, true} {
			out = append(out, setModel{
				name: setName(k, v6, d.Name), key: grantKey(v6), size: size, timeout: true,
				dynamic: k == Open && confirms(d),
				kind:    k, v6: v6, door: d.Name,
			})
		}
	}
	return out
}

// protos returns the protocols of ports, tcp first, each once.
func protos(ports []policy.PortProto) []policy.Proto {
	var out []policy.Proto
	for _, p := range []policy.Proto{policy.TCP, policy.UDP} {
		for _, pp := range ports {
			if pp.Proto == p {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// buildModel describes the table that policy p asks for:
//
//   - loopback is accepted first: it only carries this host's own traffic;
//   - ports that no door opens are accepted (only guarded ports are shut);
//   - a confirming door's promotion rules: a packet of an established
//     connection from a pending address makes it a grant for open_for.
//     TCP needs ct status assured, which conntrack sets only for the ACK
//     that completes the handshake with the server's sequence number: a
//     blind spoofer's guessed ACKs are out of window and at best ignored
//     by conntrack, and an ignored packet still counts as ct state
//     established (measured: half of random ACKs), so established alone
//     would promote spoofers. UDP has no such proof: a second packet after
//     the server answered promotes it;
//   - established connections are accepted;
//   - per door, its open and manual grants, and new connections from its
//     pending addresses;
//   - the rest is dropped or rejected.
//
// The promotion is an update, not an add: a knock while a grant is live
// puts the address back in pending, and its next packet restarts the
// grant's timer, as a re-knock always did. It runs only while the address
// is pending, so an established connection cannot keep a grant alive: a
// grant ends at most confirm_within + open_for after the last knock.
func buildModel(p *policy.Policy) model {
	table := p.Table
	if table == "" {
		table = policy.DefaultTable
	}
	guardKey := []field{fieldL4Proto, fieldTHDport}
	m := model{
		table: table,
		sets:  []setModel{{name: setGuarded, key: guardKey, comment: ownerComment, elems: p.Guarded()}},
		chain: chainModel{name: chainInput, hook: chainInput, priority: chainPriority},
	}
	accept := func(ms ...match) ruleModel { return ruleModel{matches: ms, verdict: verdictAccept} }
	lookup := func(key []field, set string) match { return match{kind: matchLookup, key: key, set: set} }
	m.chain.rules = []ruleModel{
		accept(match{kind: matchLoopback}),
		accept(match{kind: matchLookup, key: guardKey, set: setGuarded, invert: true}),
	}
	for i := range p.Doors {
		d := &p.Doors[i]
		m.sets = append(m.sets, doorSets(d)...)
		if !confirms(d) {
			continue
		}
		for _, v6 := range []bool{false, true} {
			for _, proto := range protos(d.Open) {
				ms := []match{{kind: matchCtState, states: ctEstablished}, {kind: matchCtOrig}}
				if proto == policy.TCP {
					ms = append(ms, match{kind: matchCtAssured})
				}
				key := confirmKey(v6, proto)
				ms = append(ms, lookup(key, setName(Pending, v6, d.Name)))
				m.chain.rules = append(m.chain.rules, ruleModel{matches: ms, verdict: verdictNone,
					update: &update{key: key, set: setName(Open, v6, d.Name), timeout: d.OpenFor}})
			}
		}
	}
	m.chain.rules = append(m.chain.rules, accept(match{kind: matchCtState, states: ctEstablished | ctRelated}))
	for i := range p.Doors {
		d := &p.Doors[i]
		if len(d.Open) == 0 {
			continue // only forward targets: no local sets
		}
		for _, v6 := range []bool{false, true} {
			key := grantKey(v6)
			m.chain.rules = append(m.chain.rules,
				accept(lookup(key, setName(Open, v6, d.Name))),
				accept(lookup(key, setName(Manual, v6, d.Name))))
			if confirms(d) {
				m.chain.rules = append(m.chain.rules,
					accept(match{kind: matchCtState, states: ctNew}, lookup(key, setName(Pending, v6, d.Name))))
			}
		}
	}
	if p.Closed == policy.ClosedReject {
		m.chain.rules = append(m.chain.rules,
			ruleModel{matches: []match{{kind: matchL4Proto, proto: policy.TCP}}, verdict: verdictRejectTCPReset},
			ruleModel{verdict: verdictRejectICMPX})
	} else {
		m.chain.rules = append(m.chain.rules, ruleModel{verdict: verdictDrop})
	}
	if p.Forwards() {
		m.addForward(p)
	}
	if p.TableMode == policy.TableSets {
		setsOnly(&m)
	}
	return m
}

// Ruleset returns the nftables table that Ensure installs for p, in the
// syntax of `nft list table inet NAME` (nft -f accepts it). Grant elements
// are live state, not configuration, so the grant sets are shown empty.
func Ruleset(p *policy.Policy) string { return buildModel(p).render() }

func (m model) render() string {
	if m.setsOnly {
		return m.renderSets()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", m.table)
	for _, s := range m.sets {
		s.render(&b)
		b.WriteString("\n")
	}
	m.chain.render(&b)
	if m.forward != nil {
		b.WriteString("\n")
		m.forward.render(&b)
	}
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
	switch {
	case s.dynamic && s.timeout:
		b.WriteString("\t\tflags dynamic,timeout\n")
	case s.timeout:
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
	if len(s.names) > 0 {
		elems := make([]string, len(s.names))
		for i, n := range s.names {
			elems[i] = strconv.Quote(n)
		}
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
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
	if c.regular {
		fmt.Fprintf(b, "\tchain %s {\n", c.name)
	} else {
		fmt.Fprintf(b, "\tchain %s {\n\t\ttype filter hook %s priority %s; policy accept;\n", c.name, c.hook, prio)
	}
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
	if u := r.update; u != nil {
		parts = append(parts, fmt.Sprintf("update @%s { %s timeout %s }", u.set, keyExpr(u.key), nftDuration(u.timeout)))
	}
	switch r.verdict {
	case verdictNone:
	case verdictReturn:
		parts = append(parts, "return")
	default:
		parts = append(parts, [...]string{"accept", "drop", "reject with tcp reset", "reject"}[r.verdict])
	}
	return strings.Join(parts, " ")
}

func keyExpr(key []field) string {
	exprs := make([]string, len(key))
	for i, f := range key {
		exprs[i] = f.expr()
	}
	return strings.Join(exprs, " . ")
}

func (m match) render() string {
	switch m.kind {
	case matchCtState:
		var names []string
		for _, s := range []struct {
			bit  uint32
			name string
		}{{ctEstablished, "established"}, {ctRelated, "related"}, {ctNew, "new"}} {
			if m.states&s.bit != 0 {
				names = append(names, s.name)
			}
		}
		return "ct state " + strings.Join(names, ",")
	case matchCtOrig:
		return "ct direction original"
	case matchCtAssured:
		return "ct status assured"
	case matchL4Proto:
		return "meta l4proto " + m.proto.String()
	case matchLoopback:
		return `iif "lo"`
	case matchCtDNAT:
		return "ct status dnat"
	case matchCtOrigDaddr:
		if m.addr.Is4() {
			return "ct original ip daddr " + m.addr.String()
		}
		return "ct original ip6 daddr " + m.addr.String()
	case matchCtOrigDport:
		return "ct original proto-dst " + strconv.Itoa(int(m.port))
	}
	op := "@"
	if m.invert {
		op = "!= @"
	}
	return keyExpr(m.key) + " " + op + m.set
}

// nftDuration writes d as nft lists a timeout: 1d2h3m4s5ms, zero units left
// out.
func nftDuration(d time.Duration) string {
	ms := d.Milliseconds()
	var b strings.Builder
	for _, u := range []struct {
		ms   int64
		name string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if n := ms / u.ms; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			ms -= n * u.ms
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

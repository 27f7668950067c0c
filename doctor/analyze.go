package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Port is a guarded port and what guards it.
type Port struct {
	Proto uint8 // 6 tcp, 17 udp
	Port  uint16
	Doors []string
	// Confirm: a door that opens it keeps knocks pending until the
	// connection is established (conntrack's assured status).
	Confirm bool
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, protoName(p.Proto)) }

// Forward is a forwarded service a forward door guards (policy.Target):
// a port of this host that is DNATed onward (Addr is the zero Addr), or a
// routed address and port.
type Forward struct {
	Addr  netip.Addr
	Proto uint8 // 6 tcp, 17 udp
	Port  uint16
	Doors []string
}

// Routed reports whether f names a routed address, not a port of this host.
func (f Forward) Routed() bool { return f.Addr.IsValid() }

func (f Forward) String() string {
	switch {
	case !f.Routed():
		return fmt.Sprintf("%d/%s", f.Port, protoName(f.Proto))
	case f.Addr.Is4():
		return fmt.Sprintf("%s:%d/%s", f.Addr, f.Port, protoName(f.Proto))
	}
	return fmt.Sprintf("[%s]:%d/%s", f.Addr, f.Port, protoName(f.Proto))
}

// Input is what sesame guards.
type Input struct {
	Table string // sesame's table (family inet)
	Ports []Port
	// SetsChain is set in sets mode (table_mode = "sets"): Table is the
	// admin's, and its input chain must jump to SetsChain, where sesame's
	// sets decide the guarded ports.
	SetsChain string
	// SetsForwardChain is sets mode's chain for forward doors, which the
	// admin's forward chain must jump to.
	SetsForwardChain string
	// Forwards are the forward doors' targets.
	Forwards []Forward
	// Outside are the interfaces sesame's forward chain guards (its
	// outside set); empty: not known, any interface may be outside.
	Outside []string
}

// Kind says what a finding is about.
type Kind string

const (
	// Blocked: another base chain drops a client that knocked.
	Blocked Kind = "blocked"
	// Bypass: the packet is rewritten before sesame's input chain sees
	// it, so sesame's drop does not hold the port shut.
	Bypass Kind = "bypass"
	// Untracked: a notrack rule keeps a confirming door's knocker out.
	Untracked Kind = "untracked"
	// Legacy: iptables-legacy rules filter beside nftables.
	Legacy Kind = "legacy"
	// NoTable: sesame's table is not in the kernel.
	NoTable Kind = "no-table"
	// SetsUnused: sets mode, and no input chain uses sesame's sets.
	SetsUnused Kind = "sets-unused"
)

// Finding is one problem, with where it is and how to fix it.
type Finding struct {
	Kind   Kind
	Port   string // "22/tcp", or "" for the whole host
	Where  Ref
	Detail string
	Fix    string
}

func (f Finding) String() string {
	s := string(f.Kind) + ": "
	if f.Port != "" {
		s += f.Port + ": "
	}
	if f.Where.Table != "" {
		s += f.Where.String() + ": "
	}
	return s + f.Detail + "; fix: " + f.Fix
}

// Diagnose returns the findings for in over rs. It is pure.
func Diagnose(rs Ruleset, in Input) []Finding {
	var out []Finding
	if !slices.ContainsFunc(rs.Tables, func(t Table) bool { return t.Family == "inet" && t.Name == in.Table }) && len(in.Ports)+len(in.Forwards) > 0 {
		out = append(out, Finding{Kind: NoTable, Detail: fmt.Sprintf("table inet %s is not loaded: the guarded ports are as open as the rest of the ruleset leaves them", in.Table),
			Fix: "start sesame (systemctl start sesame)"})
	}
	if in.SetsChain != "" && len(in.Ports)+len(in.Forwards) > 0 {
		out = append(out, setsUsed(rs, in)...)
	}
	for _, p := range in.Ports {
		for _, t := range rs.Tables {
			own := t.Family == "inet" && t.Name == in.Table
			if own && in.SetsChain == "" || !ipFamily(t.Family) {
				continue
			}
			for _, c := range t.Chains {
				switch c.Hook {
				case "input", "prerouting":
					if c.Type != "nat" {
						out = append(out, blocked(t, c, p, in.SetsChain)...)
					}
				}
				if c.Hook == "prerouting" {
					out = append(out, rewrites(t, c, p)...)
				}
				if (c.Hook == "prerouting" || c.Hook == "output") && p.Confirm {
					out = append(out, untracked(t, c, p)...)
				}
			}
		}
	}
	for _, f := range in.Forwards {
		out = append(out, forwarded(rs, in, f)...)
	}
	for _, l := range rs.Legacy {
		if l.Rules == 0 && len(l.DropHooks) == 0 {
			continue
		}
		var what []string
		if l.Rules > 0 {
			what = append(what, fmt.Sprintf("%d rules", l.Rules))
		}
		for _, h := range l.DropHooks {
			what = append(what, h+" policy DROP")
		}
		save := "iptables-legacy-save"
		if l.Family == "ip6" {
			save = "ip6tables-legacy-save"
		}
		out = append(out, Finding{Kind: Legacy, Where: Ref{},
			Detail: fmt.Sprintf("iptables-legacy table %s %s holds %s beside nftables: packets pass both, and the doctor cannot see inside it", l.Family, l.Name, strings.Join(what, ", ")),
			Fix:    fmt.Sprintf("read it with `%s -t %s`; move the rules to nftables (iptables-nft, or iptables-restore-translate) or allow the guarded ports there", save, l.Name)})
	}
	return out
}

func ipFamily(f string) bool { return f == "inet" || f == "ip" || f == "ip6" }

// outcome is one way a walk through a chain can end for the probe packet.
type outcome struct {
	verdict Action // Accept, Drop, or None (fell through, or returned)
	at      Ref
	maybe   bool // reached only if a condition the doctor cannot evaluate held (or did not)
	sesame  bool // the accept is sets mode's jump to sesame's chain
}

// maxOutcomes bounds the walk of chains with many conditional branches.
const (
	maxOutcomes = 64
	maxDepth    = 16
)

// walker follows one table's chains for the probe packet: a new
// connection to port p, to a local address, from any source, in on an
// outside interface.
type walker struct {
	t Table
	p Port
	// sesame is sets mode's chain: a jump there is sesame's decision,
	// an accept for a granted client.
	sesame string
	// eval says whether a rule applies to the probe packet; nil is
	// evalRule for p (the input probe).
	eval func(Rule) tri
}

func (w walker) applies(r Rule) tri {
	if w.eval != nil {
		return w.eval(r)
	}
	return evalRule(r, w.p)
}

func (w walker) chain(name string) *Chain {
	for i := range w.t.Chains {
		if w.t.Chains[i].Name == name {
			return &w.t.Chains[i]
		}
	}
	return nil
}

func (w walker) ref(c *Chain, r Rule) Ref {
	return Ref{Family: w.t.Family, Table: w.t.Name, Chain: c.Name, Handle: r.Handle, Text: r.describe()}
}

// walk returns the outcomes of c from rule i on.
func (w walker) walk(c *Chain, i int, maybe bool, depth int) []outcome {
	if c == nil || depth > maxDepth {
		return []outcome{{verdict: None, maybe: true}}
	}
	for ; i < len(c.Rules); i++ {
		r := c.Rules[i]
		ev := w.applies(r)
		if ev == no {
			continue
		}
		m := maybe || ev == unknown
		var got []outcome
		switch r.Action {
		case Accept:
			got = []outcome{{verdict: Accept, at: w.ref(c, r), maybe: m}}
		case Drop, Reject:
			got = []outcome{{verdict: Drop, at: w.ref(c, r), maybe: m}}
		case Return:
			got = []outcome{{verdict: None, at: w.ref(c, r), maybe: m}}
		case Jump, Goto:
			got = w.follow(c, i, r, m, depth)
		default:
			continue
		}
		if ev == unknown {
			// The rule may not apply: the rest of the chain too.
			got = append(got, w.walk(c, i+1, maybe, depth)...)
		}
		if len(got) > maxOutcomes {
			got = got[:maxOutcomes]
		}
		return got
	}
	return []outcome{{verdict: None, maybe: maybe}}
}

// follow returns the outcomes of rule i of c, r, a jump or a goto: a jump
// comes back to the next rule unless the chain it calls decides. A jump
// to sets mode's chain is sesame's decision: an accept for a granted
// client.
func (w walker) follow(c *Chain, i int, r Rule, m bool, depth int) []outcome {
	if w.sesame != "" && r.Target == w.sesame {
		return []outcome{{verdict: Accept, at: w.ref(c, r), maybe: m, sesame: true}}
	}
	if r.Action == Goto {
		return w.walk(w.chain(r.Target), 0, m, depth+1)
	}
	var got []outcome
	for _, o := range w.walk(w.chain(r.Target), 0, m, depth+1) {
		if o.verdict == None {
			got = append(got, w.walk(c, i+1, o.maybe, depth)...)
		} else {
			got = append(got, o)
		}
	}
	return got
}

// blocked walks base chain c of table t and reports a drop of a client that
// sesame let in.
func blocked(t Table, c Chain, p Port, sesame string) []Finding {
	w := walker{t: t, p: p, sesame: sesame}
	outs := w.walk(&c, 0, false, 0)
	var out []Finding
	if sesame != "" && t.Family == "inet" && slices.ContainsFunc(t.Chains, func(ch Chain) bool { return ch.Name == sesame }) {
		out = bypassed(c, p, outs)
	}
	var drop *outcome
	var accepts []string
	for i := range outs {
		o := &outs[i]
		if o.verdict == None {
			o.verdict = c.Policy
			o.at = Ref{Family: t.Family, Table: t.Name, Chain: c.Name, Policy: true}
		}
		switch {
		case o.verdict == Drop && (drop == nil || drop.maybe && !o.maybe):
			drop = o
		case o.verdict == Accept && !slices.Contains(accepts, fmt.Sprintf("handle %d", o.at.Handle)):
			accepts = append(accepts, fmt.Sprintf("handle %d", o.at.Handle))
		}
	}
	if drop == nil {
		return out
	}
	detail := fmt.Sprintf("drops new connections to %s from a client that sesame lets in (an accept in sesame's chain is not final: every base chain on the hook must accept)", p)
	if drop.maybe || len(accepts) > 0 {
		detail = fmt.Sprintf("may drop new connections to %s from a client that sesame lets in, depending on conditions the doctor cannot evaluate", p)
		if len(accepts) > 0 {
			detail += " (accepted only by " + strings.Join(accepts, ", ") + ")"
		}
	}
	return append(out, Finding{Kind: Blocked, Port: p.String(), Where: drop.at, Detail: detail, Fix: acceptFix(t, c, p)})
}

// bypassed reports, in sets mode, an accept of p in the admin's own input
// chain c that does not go through sesame's chain: there sesame has no
// chain of its own, so that accept is the end of it (a jump to sesame's
// chain placed after an accept of the port, or one behind an iifname
// condition).
func bypassed(c Chain, p Port, outs []outcome) []Finding {
	for _, o := range outs {
		if o.verdict != Accept || o.sesame {
			continue
		}
		detail := fmt.Sprintf("accepts new connections to %s before they reach the jump to %s: with table_mode = \"sets\" sesame's drop is in that chain, so nothing holds %s shut", p, "sesame_input", p)
		if o.maybe {
			detail = fmt.Sprintf("may accept new connections to %s without the jump to sesame_input (depending on conditions the doctor cannot evaluate): with table_mode = \"sets\" sesame's drop is in that chain", p)
		}
		return []Finding{{Kind: Bypass, Port: p.String(), Where: o.at, Detail: detail,
			Fix: fmt.Sprintf("make `jump sesame_input` the first rule of chain %s, with no condition", c.Name)}}
	}
	return nil
}

// acceptFix is how to let p through chain c of t, in the words of the
// tool that owns t.
func acceptFix(t Table, c Chain, p Port) string {
	nftRule := fmt.Sprintf("nft insert rule %s %s %s %s dport %d accept", t.Family, t.Name, c.Name, protoName(p.Proto), p.Port)
	switch {
	case t.Family == "inet" && t.Name == "firewalld":
		return fmt.Sprintf("firewall-cmd --permanent --add-port=%s && firewall-cmd --reload (in the zone of the outside interface; sesame still decides who gets through)", p)
	case slices.ContainsFunc(t.Chains, func(c Chain) bool { return strings.HasPrefix(c.Name, "ufw") }):
		return fmt.Sprintf("ufw allow %s (sesame still decides who gets through)", p)
	}
	return nftRule + " (and the same accept in the file the ruleset is loaded from, e.g. /etc/nftables.conf; sesame still decides who gets through)"
}

// rewrites reports a DNAT or redirect of p reachable from prerouting chain
// c: the input hook, if the packet reaches it at all, sees the new
// destination, not p.
func rewrites(t Table, c Chain, p Port) []Finding {
	w := walker{t: t, p: p}
	var out []Finding
	skip := func(r Rule) bool { return evalRule(r, p) == no }
	w.eachReachable(&c, skip, func(ch *Chain, r Rule) {
		if r.Action != DNAT && r.Action != Redirect {
			return
		}
		fix := "a redirect: add the port it is redirected to to the door's open list, or remove the rule"
		detail := fmt.Sprintf("rewrites the destination of %s before the input hook: sesame's chain sees the new port, not %s, so its drop does not hold %s shut", p, p, p)
		if r.Action == DNAT {
			detail = fmt.Sprintf("rewrites the destination of %s before routing: to another host the packet takes the forward path and never meets sesame's input chain; to this host sesame sees the new port", p)
			fix = fmt.Sprintf(`guard the service with a forward door (forward = ["%s"]) instead of open, or publish it on 127.0.0.1 only, or remove the rule`, p)
		}
		out = append(out, Finding{Kind: Bypass, Port: p.String(), Where: w.ref(ch, r), Detail: detail, Fix: fix})
	})
	return out
}

// eachReachable calls fn for every rule reachable from chain c through
// jumps and gotos (each chain once, at most maxDepth deep), in order, but
// for the jumps and gotos themselves, which it follows. Rules for which
// skip (if not nil) reports true are passed over, jumps included.
func (w walker) eachReachable(c *Chain, skip func(Rule) bool, fn func(ch *Chain, r Rule)) {
	seen := map[string]bool{}
	var visit func(ch *Chain, depth int)
	visit = func(ch *Chain, depth int) {
		if ch == nil || depth > maxDepth || seen[ch.Name] {
			return
		}
		seen[ch.Name] = true
		for _, r := range ch.Rules {
			if skip != nil && skip(r) {
				continue
			}
			switch r.Action {
			case Jump, Goto:
				visit(w.chain(r.Target), depth+1)
			default:
				fn(ch, r)
			}
		}
	}
	visit(c, 0)
}

// untracked reports a notrack rule for p: sesame's pending grants admit
// `ct state new` only, so an untracked packet of a confirming door's
// knocker is dropped.
func untracked(t Table, c Chain, p Port) []Finding {
	w := walker{t: t, p: p}
	var out []Finding
	for _, r := range c.Rules {
		if r.Action != Notrack || evalRule(r, p) == no {
			continue
		}
		out = append(out, Finding{Kind: Untracked, Port: p.String(), Where: w.ref(&c, r),
			Detail: fmt.Sprintf("packets to %s are untracked: a confirming door (%s) admits a pending knocker with ct state new and confirms with conntrack's assured status, so its knocker is dropped", p, strings.Join(p.Doors, ", ")),
			Fix:    fmt.Sprintf("leave %s out of the notrack rule, or set confirm = false on the door", p)})
	}
	return out
}

// tri is a three-valued truth.
type tri uint8

const (
	no tri = iota
	yes
	unknown
)

// evalRule says whether r applies to the probe packet for p.
func evalRule(r Rule, p Port) tri {
	if r.Protos != nil && !slices.Contains(r.Protos, p.Proto) {
		return no
	}
	if r.Ports != nil && !slices.ContainsFunc(r.Ports, func(pr PortRange) bool { return pr.Lo <= p.Port && p.Port <= pr.Hi }) {
		return no
	}
	res := yes
	for _, c := range r.Conds {
		v := evalCond(c)
		if c.Kind == CondOrigDport { // no DNAT: the original port is p
			v = negate(c.Port == p.Port, c.Negate)
		}
		switch v {
		case no:
			return no
		case unknown:
			res = unknown
		}
	}
	return res
}

// negate is the truth of a condition that holds when v, negated if neg.
func negate(v, neg bool) tri {
	if v != neg {
		return yes
	}
	return no
}

// evalCond evaluates c for the probe packet: a new connection, to a local
// unicast address, from any source, in on an interface other than lo.
func evalCond(c Cond) tri {
	var v tri
	switch c.Kind {
	case CondIif:
		if c.Value != "lo" {
			return unknown // which interface is the outside one is the host's business
		}
		v = no
	case CondCtState:
		v = no
		if c.States&CtNew != 0 {
			v = yes
		}
	case CondFibType:
		v = no
		if c.Value == "local" || c.Value == "unicast" {
			v = yes
		}
	case CondCtDNAT:
		v = no // a DNATed packet to a guarded port is a bypass finding of its own
	default:
		return unknown
	}
	if c.Negate {
		if v == yes {
			return no
		}
		return yes
	}
	return v
}

// setsUsed checks sets mode's layout: a base chain on the input hook of
// the admin's table reaches (by jump or goto) a chain whose rules use
// sesame's guarded set; with forward doors, a base chain on the forward
// hook reaches one whose rules use sesame's forward grant sets.
func setsUsed(rs Ruleset, in Input) []Finding {
	i := slices.IndexFunc(rs.Tables, func(t Table) bool { return t.Family == "inet" && t.Name == in.Table })
	if i < 0 {
		return nil // NoTable says it
	}
	t := rs.Tables[i]
	w := walker{t: t}
	reached := func(hook string, sets ...string) bool {
		uses := func(c *Chain) bool {
			return slices.ContainsFunc(c.Rules, func(r Rule) bool {
				return slices.ContainsFunc(r.Conds, func(c Cond) bool {
					return c.Kind == CondOther && slices.ContainsFunc(sets, func(s string) bool { return strings.Contains(c.Value, s) })
				})
			})
		}
		var reach func(c *Chain, depth int) bool
		reach = func(c *Chain, depth int) bool {
			if c == nil || depth > maxDepth {
				return false
			}
			if uses(c) {
				return true
			}
			for _, r := range c.Rules {
				if (r.Action == Jump || r.Action == Goto) && reach(w.chain(r.Target), depth+1) {
					return true
				}
			}
			return false
		}
		for j := range t.Chains {
			if t.Chains[j].Hook == hook && reach(&t.Chains[j], 0) {
				return true
			}
		}
		return false
	}
	var out []Finding
	if len(in.Ports) > 0 && !reached("input", "@guarded") {
		out = append(out, Finding{Kind: SetsUnused, Where: Ref{Family: "inet", Table: in.Table},
			Detail: fmt.Sprintf("table_mode is sets, but no base chain on the input hook of table inet %s reaches rules that use sesame's sets: the guarded ports are as open as your ruleset leaves them", in.Table),
			Fix:    fmt.Sprintf("paste the output of `sesame check --ruleset` into table inet %s and make `jump %s` the first rule of its input chain", in.Table, in.SetsChain)})
	}
	// The forward grant sets (nft's fwd4_, fmanual4_, fpend4_ and their
	// IPv6 twins): every forward door has the first two.
	if len(in.Forwards) > 0 && !reached("forward", "@fwd4_", "@fwd6_", "@fmanual4_", "@fmanual6_") {
		out = append(out, Finding{Kind: SetsUnused, Where: Ref{Family: "inet", Table: in.Table},
			Detail: fmt.Sprintf("table_mode is sets, but no base chain on the forward hook of table inet %s reaches rules that use sesame's forward sets: the forwarded services are as open as your ruleset leaves them", in.Table),
			Fix:    fmt.Sprintf("paste the output of `sesame check --ruleset` into table inet %s and make `jump %s` the first rule of its forward chain", in.Table, in.SetsForwardChain)})
	}
	return out
}

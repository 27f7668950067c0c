package doctor

import (
	"fmt"
	"slices"
	"strings"
)

// forwarded checks forward target f: every base chain on the forward hook
// of another table must let a granted client's new connection through
// (Blocked), and for a port of this host the DNAT that carries it onward
// must match the port the door lists and take traffic from an outside
// interface (Bypass: else sesame's forward chain never meets it).
func forwarded(rs Ruleset, in Input, f Forward) []Finding {
	var out []Finding
	var dnats []dnatRule
	for _, t := range rs.Tables {
		if t.Family == "inet" && t.Name == in.Table || !ipFamily(t.Family) ||
			f.Routed() && (f.Addr.Is4() && t.Family == "ip6" || !f.Addr.Is4() && t.Family == "ip") {
			continue
		}
		for _, c := range t.Chains {
			switch {
			case c.Hook == "forward" && c.Type != "nat":
				out = append(out, forwardBlocked(t, c, f, in.Outside)...)
			case c.Hook == "prerouting" && c.Type == "nat" && !f.Routed():
				dnats = append(dnats, dnatsOf(t, c)...)
			}
		}
	}
	if !f.Routed() {
		out = append(out, dnatFindings(f, dnats, in.Outside)...)
	}
	return out
}

// evalForward returns the evaluation of a rule on the forward hook for
// the forward probe of f: a new connection from any source, in on an
// outside interface, to f's original destination, after DNAT (a port of
// this host: `ct status dnat` holds, and the destination address and port
// are the backend's, which the doctor does not know).
func evalForward(f Forward, outside []string) func(Rule) tri {
	return func(r Rule) tri {
		if r.Protos != nil && !slices.Contains(r.Protos, f.Proto) {
			return no
		}
		res := yes
		if r.Ports != nil {
			match := slices.ContainsFunc(r.Ports, func(pr PortRange) bool { return pr.Lo <= f.Port && f.Port <= pr.Hi })
			switch {
			case !f.Routed():
				res = unknown // the backend's port, after DNAT
			case !match:
				return no
			}
		}
		for _, c := range r.Conds {
			switch evalForwardCond(c, f, outside) {
			case no:
				return no
			case unknown:
				res = unknown
			}
		}
		return res
	}
}

func evalForwardCond(c Cond, f Forward, outside []string) tri {
	var v bool
	switch c.Kind {
	case CondIif:
		switch {
		case c.Value == "lo":
			v = false
		case len(outside) == 0:
			return unknown
		case !slices.Contains(outside, c.Value):
			v = false
		case len(outside) > 1:
			return unknown // one of them
		default:
			v = true
		}
	case CondCtState:
		v = c.States&CtNew != 0
	case CondFibType:
		v = c.Value == "unicast" // the destination is not local
	case CondCtDNAT:
		if f.Routed() {
			return unknown // someone may DNAT a routed address elsewhere
		}
		v = true
	case CondOrigDport:
		v = c.Port == f.Port
	default:
		return unknown
	}
	return negate(v, c.Negate)
}

// forwardBlocked walks base chain c on the forward hook of table t and
// reports a drop of a granted client when nothing in it accepts f: an
// accept that depends on what the doctor cannot evaluate (Docker's
// `oifname "docker0"` and the container's address in its DOCKER chain)
// counts as one, since on the forward path those conditions are about the
// backend, which the rule that accepts is written for.
func forwardBlocked(t Table, c Chain, f Forward, outside []string) []Finding {
	w := walker{t: t, eval: evalForward(f, outside)}
	var drop *outcome
	outs := w.walk(&c, 0, false, 0)
	for i := range outs {
		o := &outs[i]
		if o.verdict == None {
			o.verdict = c.Policy
			o.at = Ref{Family: t.Family, Table: t.Name, Chain: c.Name, Policy: true}
		}
		switch {
		case o.verdict == Accept:
			return nil
		case o.verdict == Drop && (drop == nil || drop.maybe && !o.maybe):
			drop = o
		}
	}
	if drop == nil {
		return nil
	}
	detail := fmt.Sprintf("drops new forwarded connections to %s from a client that sesame lets in, and nothing in it accepts them (an accept in sesame's forward chain is not final: every base chain on the forward hook must accept)", f)
	if drop.maybe {
		detail = fmt.Sprintf("may drop new forwarded connections to %s from a client that sesame lets in (depending on conditions the doctor cannot evaluate), and nothing in it accepts them", f)
	}
	return []Finding{{Kind: Blocked, Port: f.String(), Where: drop.at, Detail: detail, Fix: forwardFix(t, c, f)}}
}

// ForwardAccept is the nft rule that accepts a granted client's forwarded
// connection to f (sesame's own forward chain decides who is granted).
func ForwardAccept(f Forward) string {
	p := protoName(f.Proto)
	switch {
	case !f.Routed():
		return fmt.Sprintf("ct status dnat meta l4proto %s ct original proto-dst %d accept", p, f.Port)
	case f.Addr.Is4():
		return fmt.Sprintf("ip daddr %s %s dport %d accept", f.Addr, p, f.Port)
	}
	return fmt.Sprintf("ip6 daddr %s %s dport %d accept", f.Addr, p, f.Port)
}

func forwardFix(t Table, c Chain, f Forward) string {
	nftRule := fmt.Sprintf("nft insert rule %s %s %s %s", t.Family, t.Name, c.Name, ForwardAccept(f))
	switch {
	case t.Family == "inet" && t.Name == "firewalld":
		return fmt.Sprintf("allow the forwarded traffic in firewalld (a policy from the outside zone to the backend's zone, firewall-cmd --permanent --new-policy ... --add-port=%d/%s, or forward-port in the zone) and firewall-cmd --reload; or %s; sesame still decides who gets through", f.Port, protoName(f.Proto), nftRule)
	case slices.ContainsFunc(t.Chains, func(c Chain) bool { return strings.HasPrefix(c.Name, "ufw") }) && f.Routed():
		return fmt.Sprintf("ufw route allow proto %s to %s port %d (sesame still decides who gets through)", protoName(f.Proto), f.Addr, f.Port)
	}
	return nftRule + " (and the same accept in the file the ruleset is loaded from, e.g. /etc/nftables.conf; sesame still decides who gets through)"
}

// dnatRule is a DNAT reachable from a nat prerouting base chain.
type dnatRule struct {
	at   Ref
	rule Rule
}

// dnatsOf returns the DNAT rules reachable from nat prerouting chain c.
func dnatsOf(t Table, c Chain) []dnatRule {
	w := walker{t: t}
	var out []dnatRule
	w.eachReachable(&c, nil, func(ch *Chain, r Rule) {
		if r.Action == DNAT {
			out = append(out, dnatRule{at: w.ref(ch, r), rule: r})
		}
	})
	return out
}

// dnatFindings checks the DNATs of the ruleset against f, a port of this
// host: sesame's forward chain matches a DNATed connection by its
// original port, so f must be the port a DNAT matches (Docker's -p
// HOST:CONTAINER: HOST), and the DNAT must take its traffic from an
// outside interface (sesame accepts the rest at once). No DNAT at all is
// no finding: Docker may not have started yet.
func dnatFindings(f Forward, dnats []dnatRule, outside []string) []Finding {
	if len(dnats) == 0 {
		return nil
	}
	p := Port{Proto: f.Proto, Port: f.Port}
	var out []Finding
	var others []string
	matched := false
	for _, d := range dnats {
		if evalRule(d.rule, p) == no {
			if d.rule.Ports != nil {
				others = append(others, d.at.String())
			}
			continue
		}
		matched = true
		if len(outside) == 0 {
			continue
		}
		for _, c := range d.rule.Conds {
			if c.Kind != CondIif || c.Negate || c.Value == "lo" || slices.Contains(outside, c.Value) {
				continue
			}
			out = append(out, Finding{Kind: Bypass, Port: f.String(), Where: d.at,
				Detail: fmt.Sprintf("DNATs %s only for traffic that enters on %s, which is not one of sesame's outside interfaces (%s): sesame's forward chain accepts that traffic at once, so it guards nothing here", f, c.Value, strings.Join(outside, ", ")),
				Fix:    fmt.Sprintf(`add "%s" to interfaces in sesame's config (interfaces = ["%s", "%s"]), or restrict the DNAT to an outside interface`, c.Value, strings.Join(outside, `", "`), c.Value)})
		}
	}
	if !matched && len(others) > 0 {
		out = append(out, Finding{Kind: Bypass, Port: f.String(), Where: dnats[0].at,
			Detail: fmt.Sprintf("no DNAT in prerouting matches port %s, but others do (%s): a forwarded port of this host is matched on the original destination port of a DNATed connection, so the door guards nothing there and the DNATed ports stay open", f, strings.Join(others, "; ")),
			Fix:    "list the port the DNAT matches (Docker's -p HOST:CONTAINER: the HOST port) in the door's forward, e.g. forward = [\"8080/tcp\"], not the backend's port"})
	}
	return out
}

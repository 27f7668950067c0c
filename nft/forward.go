package nft

import (
	"github.com/sesame-knock/sesame/policy"
)

// The forward chain guards what the host forwards (forward doors): Docker's
// published ports, DNAT of the host's own, routed backends. Its layout:
//
//   - traffic that does not enter on an outside interface (the set
//     outside: the interfaces sesame captures on) is accepted, so that
//     containers and VMs talking to each other are never touched. With no
//     interfaces known (check --ruleset on a config that leaves them to
//     the default routes) the rule is left out: every interface is
//     outside, which fails closed;
//   - a confirming door's promotion rules, per target, as in the input
//     chain: the assured packet (TCP), or a second packet of an answered
//     flow (UDP), from a pending address makes it a forward grant;
//   - established and related connections are accepted;
//   - per door, per target: its forward grants (fwd4_, fmanual4_, and new
//     connections of its pending addresses, fpend4_) are accepted;
//   - per door, per target: the rest is dropped or rejected.
//
// A target is matched on the connection's original destination, as
// conntrack recorded it before DNAT: a port of this host is `ct status
// dnat meta l4proto P ct original proto-dst N`, a routed address `ct
// original ip daddr A meta l4proto P ct original proto-dst N`. nft 1.0.6
// cannot put `ct original proto-dst` in a concatenation or an anonymous
// set ("can not use variable sized data types"), so targets are rules,
// not set elements, and a forward grant set holds source addresses alone:
// a door's forward grant opens all of the door's targets for the address.
//
// Why a drop here holds against an accept elsewhere: every base chain on
// the forward hook sees the packet in priority order, and an accept ends
// the packet's walk only through its own chain; a drop ends it for good.
// So Docker's FORWARD accept (iptables-nft, priority filter) or
// firewalld's cannot let an ungranted packet past sesame's drop, and
// sesame's accept (a grant) still leaves their drops in force.

const (
	chainForward = "forward"
	setOutside   = "outside"
)

// targetMatches returns the matches of target t.
func targetMatches(t policy.Target) []match {
	var ms []match
	if t.Routed() {
		ms = append(ms, match{kind: matchCtOrigDaddr, addr: t.Addr})
	} else {
		ms = append(ms, match{kind: matchCtDNAT})
	}
	return append(ms, match{kind: matchL4Proto, proto: t.Proto}, match{kind: matchCtOrigDport, port: t.Port})
}

// families returns the address families of t's connections: a routed
// target's own, both for a port of this host.
func families(t policy.Target) []bool {
	if !t.Routed() {
		return []bool{false, true}
	}
	return []bool{!t.Addr.Is4()}
}

// saddrKey is a forward grant set's key: the source address.
func saddrKey(v6 bool) []field {
	if v6 {
		return []field{fieldIP6Saddr}
	}
	return []field{fieldIPSaddr}
}

// forwardSets returns door d's forward grant sets (none without targets).
func forwardSets(d *policy.Door) []setModel {
	if len(d.Forward) == 0 {
		return nil
	}
	size := uint32(d.MaxGrants)
	if size == 0 {
		size = policy.DefaultMaxGrants
	}
	kinds := []Kind{FwdOpen, FwdManual}
	if confirms(d) {
		kinds = append(kinds, FwdPending)
	}
	var out []setModel
	for _, k := range kinds {
		for _, v6 := range []bool{false, true} {
			out = append(out, setModel{
				name: setName(k, v6, d.Name), key: saddrKey(v6), size: size, timeout: true,
				dynamic: k == FwdOpen && confirms(d),
				kind:    k, v6: v6, door: d.Name,
			})
		}
	}
	return out
}

// addForward adds the outside set, the doors' forward grant sets and the
// forward chain to m.
func (m *model) addForward(p *policy.Policy) {
	c := &chainModel{name: chainForward, hook: chainForward, priority: chainPriority}
	rule := func(v verdict, ms ...match) ruleModel { return ruleModel{matches: ms, verdict: v} }
	lookup := func(v6 bool, set string) match { return match{kind: matchLookup, key: saddrKey(v6), set: set} }
	if len(p.Interfaces) > 0 {
		m.sets = append(m.sets, setModel{name: setOutside, key: []field{fieldIifname}, names: p.Interfaces})
		c.rules = append(c.rules, rule(verdictAccept, match{kind: matchLookup, key: []field{fieldIifname}, set: setOutside, invert: true}))
	}
	for i := range p.Doors {
		d := &p.Doors[i]
		m.sets = append(m.sets, forwardSets(d)...)
		if !confirms(d) {
			continue
		}
		for _, t := range d.Forward {
			for _, v6 := range families(t) {
				ms := []match{{kind: matchCtState, states: ctEstablished}, {kind: matchCtOrig}}
				if t.Proto == policy.TCP {
					ms = append(ms, match{kind: matchCtAssured})
				}
				ms = append(append(ms, targetMatches(t)...), lookup(v6, setName(FwdPending, v6, d.Name)))
				c.rules = append(c.rules, ruleModel{matches: ms, verdict: verdictNone,
					update: &update{key: saddrKey(v6), set: setName(FwdOpen, v6, d.Name), timeout: d.OpenFor}})
			}
		}
	}
	c.rules = append(c.rules, rule(verdictAccept, match{kind: matchCtState, states: ctEstablished | ctRelated}))
	for i := range p.Doors {
		d := &p.Doors[i]
		for _, t := range d.Forward {
			for _, v6 := range families(t) {
				tm := targetMatches(t)
				c.rules = append(c.rules,
					rule(verdictAccept, append(tm[:len(tm):len(tm)], lookup(v6, setName(FwdOpen, v6, d.Name)))...),
					rule(verdictAccept, append(tm[:len(tm):len(tm)], lookup(v6, setName(FwdManual, v6, d.Name)))...))
				if confirms(d) {
					ms := append([]match{{kind: matchCtState, states: ctNew}}, tm...)
					c.rules = append(c.rules, rule(verdictAccept, append(ms, lookup(v6, setName(FwdPending, v6, d.Name)))...))
				}
			}
		}
	}
	for i := range p.Doors {
		for _, t := range p.Doors[i].Forward {
			c.targets = append(c.targets, targetMatches(t))
			v := verdictDrop
			if p.Closed == policy.ClosedReject {
				v = verdictRejectICMPX
				if t.Proto == policy.TCP {
					v = verdictRejectTCPReset
				}
			}
			c.rules = append(c.rules, rule(v, targetMatches(t)...))
		}
	}
	m.forward = c
}

package doctor

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// ReadOption changes what Read reads.
type ReadOption func(*readOptions)

type readOptions struct {
	netns    int
	procNet  string // /proc/self/net (the process's namespace)
	noLegacy bool
}

// WithNetNS reads the ruleset of the network namespace that fd refers to
// (tests); the iptables-legacy tables are then not read.
func WithNetNS(fd int) ReadOption {
	return func(o *readOptions) { o.netns, o.noLegacy = fd, true }
}

// Read reads the live ruleset: every nftables table over netlink, and the
// iptables-legacy tables through the kernel's x_tables interface (see
// legacy.go). It needs CAP_NET_ADMIN (and CAP_NET_RAW for legacy tables).
func Read(opts ...ReadOption) (Ruleset, error) {
	o := readOptions{procNet: "/proc/self/net"} // not /proc/net: the unit's ProcSubset=pid hides it
	for _, f := range opts {
		f(&o)
	}
	var nopts []nftables.ConnOption
	if o.netns != 0 {
		nopts = append(nopts, nftables.WithNetNSFd(o.netns))
	}
	c, err := nftables.New(nopts...)
	if err != nil {
		return Ruleset{}, fmt.Errorf("netlink: %w", err)
	}
	defer c.CloseLasting()
	rs, err := readNft(c, o.netns)
	if err != nil {
		return rs, err
	}
	if !o.noLegacy {
		rs.Legacy, err = readLegacy(o.procNet)
	}
	return rs, err
}

func readNft(c *nftables.Conn, netns int) (Ruleset, error) {
	var rs Ruleset
	tables, err := c.ListTables()
	if err != nil {
		return rs, fmt.Errorf("list tables: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return rs, fmt.Errorf("list chains: %w", err)
	}
	for _, t := range tables {
		tb := Table{Family: familyName(t.Family), Name: t.Name}
		sets := map[string]*nftables.Set{}
		if ss, err := c.GetSets(t); err == nil {
			for _, s := range ss {
				sets[s.Name] = s
			}
		}
		for _, ch := range chains {
			if ch.Table.Name != t.Name || ch.Table.Family != t.Family {
				continue
			}
			mc := Chain{Name: ch.Name, Type: string(ch.Type), Policy: Accept}
			if ch.Hooknum != nil {
				mc.Hook = hookName(t.Family, uint32(*ch.Hooknum))
			}
			if ch.Priority != nil {
				mc.Priority = int32(*ch.Priority)
			}
			if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
				mc.Policy = Drop
			}
			rules, err := c.GetRules(t, ch)
			if err != nil {
				rules, err = rawRules(netns, t, ch.Name)
			}
			if err != nil {
				return rs, fmt.Errorf("rules of %s %s %s: %w", tb.Family, t.Name, ch.Name, err)
			}
			for _, r := range rules {
				mc.Rules = append(mc.Rules, convertRule(c, sets, r))
			}
			tb.Chains = append(tb.Chains, mc)
		}
		rs.Tables = append(rs.Tables, tb)
	}
	return rs, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprint(uint8(f))
}

func hookName(f nftables.TableFamily, h uint32) string {
	if f == nftables.TableFamilyNetdev {
		return [...]string{"ingress", "egress", "?"}[min(h, 2)]
	}
	if h > 4 {
		return fmt.Sprint(h)
	}
	return [...]string{"prerouting", "input", "forward", "output", "postrouting"}[h]
}

// source is what a register holds.
type source uint8

const (
	srcOther source = iota
	srcL4Proto
	srcDport
	srcIif
	srcIifname
	srcCtState
	srcCtStatus
	srcFibType
	srcCtOrigDport
)

// convertRule reduces a rule's expressions to the model: the matches on
// protocol and destination port, the conditions the analysis evaluates
// (iif, ct state, ct status dnat, fib daddr type), the rest as "other",
// and the action.
func convertRule(c *nftables.Conn, sets map[string]*nftables.Set, r *nftables.Rule) Rule {
	m := Rule{Handle: r.Handle}
	regs := map[uint32]source{}
	masks := map[uint32][]byte{}
	other := func(what string) { m.Conds = append(m.Conds, Cond{Kind: CondOther, Value: what}) }
	// IPv4's protocol at offset 9 and IPv6's next header at offset 6 of
	// the network header are the layer 4 protocol when the table's family
	// says which header it is.
	fam := r.Table.Family
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			switch {
			case e.SourceRegister:
			case e.Key == expr.MetaKeyL4PROTO:
				regs[e.Register] = srcL4Proto
			case e.Key == expr.MetaKeyIIF:
				regs[e.Register] = srcIif
			case e.Key == expr.MetaKeyIIFNAME:
				regs[e.Register] = srcIifname
			default:
				regs[e.Register] = srcOther
			}
			delete(masks, e.Register)
		case *expr.Payload:
			s := srcOther
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				s = srcDport
			case e.Base == expr.PayloadBaseNetworkHeader && e.Len == 1 &&
				(fam == nftables.TableFamilyIPv4 && e.Offset == 9 || fam == nftables.TableFamilyIPv6 && e.Offset == 6):
				s = srcL4Proto
			}
			regs[e.DestRegister] = s
			delete(masks, e.DestRegister)
		case *expr.Ct:
			s := srcOther
			switch e.Key {
			case expr.CtKeySTATE:
				s = srcCtState
			case expr.CtKeySTATUS:
				s = srcCtStatus
			case expr.CtKeyPROTODST:
				// google/nftables does not decode the direction it reads
				// back: 0 is the original one, the only one nft users
				// write for a destination port.
				if e.Direction == 0 {
					s = srcCtOrigDport
				}
			}
			if !e.SourceRegister {
				regs[e.Register] = s
				delete(masks, e.Register)
			}
		case *expr.Fib:
			s := srcOther
			if e.FlagDADDR && e.ResultADDRTYPE && !e.FlagSADDR {
				s = srcFibType
			}
			regs[e.Register] = s
			delete(masks, e.Register)
		case *expr.Bitwise:
			regs[e.DestRegister] = regs[e.SourceRegister]
			masks[e.DestRegister] = e.Mask
		case *expr.Cmp:
			convertCmp(&m, regs[e.Register], masks[e.Register], e, other)
		case *expr.Range:
			if regs[e.Register] == srcDport && e.Op == expr.CmpOpEq && len(e.FromData) == 2 && len(e.ToData) == 2 {
				m.Ports = append(m.Ports, PortRange{binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData)})
			} else {
				other("range")
			}
		case *expr.Lookup:
			convertLookup(c, sets, &m, regs[e.SourceRegister], e, other)
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				m.Action = Accept
			case expr.VerdictDrop:
				m.Action = Drop
			case expr.VerdictReturn:
				m.Action = Return
			case expr.VerdictJump:
				m.Action, m.Target = Jump, e.Chain
			case expr.VerdictGoto:
				m.Action, m.Target = Goto, e.Chain
			case expr.VerdictQueue:
				m.Action = Queue
			}
		case *expr.Reject:
			m.Action = Reject
		case *expr.NAT:
			if e.Type == expr.NATTypeDestNAT {
				m.Action = DNAT
			}
		case *expr.Redir:
			m.Action = Redirect
		case *expr.Notrack:
			m.Action = Notrack
		case *expr.Queue:
			m.Action = Queue
		case *expr.Target: // iptables-nft's xt targets
			switch e.Name {
			case "REJECT":
				m.Action = Reject
			case "DNAT":
				m.Action = DNAT
			case "REDIRECT":
				m.Action = Redirect
			case "CT":
				// -j CT --notrack is iptables' notrack
				m.Action = Notrack
			}
		case *expr.Match: // iptables-nft's xt matches
			if e.Name != "comment" {
				other("xt match " + e.Name)
			}
		case *expr.Counter, *expr.Log, *expr.Immediate, *expr.Dynset:
		case *expr.Limit:
			other("limit")
		default:
			other(fmt.Sprintf("%T", e))
		}
	}
	return m
}

// convertCmp adds a comparison of a register that holds s.
func convertCmp(m *Rule, s source, mask []byte, e *expr.Cmp, other func(string)) {
	eq := e.Op == expr.CmpOpEq
	switch {
	case s == srcL4Proto && eq && len(e.Data) == 1 && mask == nil:
		m.Protos = append(m.Protos, e.Data[0])
	case s == srcDport && eq && len(e.Data) == 2 && mask == nil:
		m.Ports = append(m.Ports, PortRange{binary.BigEndian.Uint16(e.Data), binary.BigEndian.Uint16(e.Data)})
	case s == srcIifname && (eq || e.Op == expr.CmpOpNeq):
		name := string(e.Data)
		if i := slices.Index(e.Data, 0); i >= 0 {
			name = string(e.Data[:i])
		}
		m.Conds = append(m.Conds, Cond{Kind: CondIif, Negate: !eq, Value: name})
	case s == srcIif && (eq || e.Op == expr.CmpOpNeq) && len(e.Data) == 4:
		name := fmt.Sprintf("#%d", binary.NativeEndian.Uint32(e.Data))
		if binary.NativeEndian.Uint32(e.Data) == 1 {
			name = "lo" // index 1 in every namespace
		}
		m.Conds = append(m.Conds, Cond{Kind: CondIif, Negate: !eq, Value: name})
	case s == srcCtState && len(e.Data) == 4:
		v := binary.NativeEndian.Uint32(e.Data)
		switch {
		case mask != nil && e.Op == expr.CmpOpNeq && v == 0 && len(mask) == 4:
			m.Conds = append(m.Conds, Cond{Kind: CondCtState, States: binary.NativeEndian.Uint32(mask)})
		case mask != nil && eq && v == 0 && len(mask) == 4:
			m.Conds = append(m.Conds, Cond{Kind: CondCtState, Negate: true, States: binary.NativeEndian.Uint32(mask)})
		case mask == nil && (eq || e.Op == expr.CmpOpNeq):
			m.Conds = append(m.Conds, Cond{Kind: CondCtState, Negate: !eq, States: v})
		default:
			other("ct state")
		}
	case s == srcCtStatus && mask != nil && len(e.Data) == 4 && len(mask) == 4 && binary.NativeEndian.Uint32(mask) == ipsDstNAT && binary.NativeEndian.Uint32(e.Data) == 0:
		m.Conds = append(m.Conds, Cond{Kind: CondCtDNAT, Negate: eq})
	case s == srcCtOrigDport && mask == nil && len(e.Data) == 2 && (eq || e.Op == expr.CmpOpNeq):
		m.Conds = append(m.Conds, Cond{Kind: CondOrigDport, Negate: !eq, Port: binary.BigEndian.Uint16(e.Data)})
	case s == srcFibType && len(e.Data) == 4 && (eq || e.Op == expr.CmpOpNeq):
		m.Conds = append(m.Conds, Cond{Kind: CondFibType, Negate: !eq, Value: rtnType(binary.NativeEndian.Uint32(e.Data))})
	default:
		other("cmp")
	}
}

// ipsDstNAT is conntrack's IPS_DST_NAT status bit (ct status dnat).
const ipsDstNAT = 1 << 5

func rtnType(t uint32) string {
	names := map[uint32]string{1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprint(t)
}

// convertLookup turns a lookup of the protocol or port in an anonymous set
// (`tcp dport { 22, 80 }`, `meta l4proto { tcp, udp }`) into the match;
// any other lookup (a named set, a concatenation) is a condition the
// doctor does not evaluate.
func convertLookup(c *nftables.Conn, sets map[string]*nftables.Set, m *Rule, s source, e *expr.Lookup, other func(string)) {
	set := sets[e.SetName]
	if set == nil || !set.Anonymous || set.Concatenation || (s != srcDport && s != srcL4Proto && s != srcCtState) || e.Invert && s != srcCtState {
		other("@" + e.SetName)
		return
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		other("@" + e.SetName)
		return
	}
	if s == srcCtState { // ct state { established, related }
		cond := Cond{Kind: CondCtState, Negate: e.Invert}
		for _, el := range elems {
			if len(el.Key) == 4 {
				cond.States |= binary.NativeEndian.Uint32(el.Key)
			}
		}
		m.Conds = append(m.Conds, cond)
		return
	}
	width := 2
	if s == srcL4Proto {
		width = 1
	}
	type point struct {
		v   uint32
		end bool
	}
	var pts []point
	for _, el := range elems {
		if len(el.Key) < width {
			other("@" + e.SetName)
			return
		}
		v := uint32(el.Key[0])
		if width == 2 {
			v = uint32(binary.BigEndian.Uint16(el.Key))
		}
		pts = append(pts, point{v, el.IntervalEnd})
	}
	slices.SortFunc(pts, func(a, b point) int { return int(a.v) - int(b.v) })
	for i, p := range pts {
		if p.end {
			continue
		}
		hi := p.v
		if set.Interval {
			hi = 65535
			if i+1 < len(pts) && pts[i+1].end {
				hi = pts[i+1].v - 1
			}
		}
		if s == srcL4Proto {
			for v := p.v; v <= hi && v < 256; v++ {
				m.Protos = append(m.Protos, uint8(v))
			}
		} else {
			m.Ports = append(m.Ports, PortRange{uint16(p.v), uint16(hi)})
		}
	}
}

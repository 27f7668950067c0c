package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file turns the model into google/nftables objects: what nft -f would
// send for the text that render produces (checked with nft --debug=netlink).

func (f field) datatype() nftables.SetDatatype {
	return [...]nftables.SetDatatype{
		nftables.TypeIPAddr, nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService,
		nftables.TypeInetService, nftables.TypeInetService, nftables.TypeIFName,
	}[f]
}

// nfSet is the set declaration for table t.
func (s setModel) nfSet(t *nftables.Table) *nftables.Set {
	types := make([]nftables.SetDatatype, len(s.key))
	for i, f := range s.key {
		types[i] = f.datatype()
	}
	set := &nftables.Set{
		Table:      t,
		Name:       s.name,
		KeyType:    nftables.MustConcatSetType(types...),
		HasTimeout: s.timeout,
		Dynamic:    s.dynamic,
		Size:       s.size,
		Comment:    s.comment,
	}
	if len(s.key) == 1 && s.key[0] == fieldIifname {
		// nft marks a string key host-endian in the set's userdata, or
		// lists its elements as "".
		set.KeyByteOrder = binaryutil.NativeEndian
	}
	return set
}

// register returns the netlink register number for the 32-bit register
// slot i (0 is the first): nft names a slot on a 128-bit boundary by its
// 128-bit register (1..4) and the others by their 32-bit number (8..23).
func register(slot int) uint32 {
	if slot%4 == 0 {
		return uint32(1 + slot/4)
	}
	return uint32(unix.NFT_REG32_00 + slot)
}

// load returns the expressions that put f into register slot `slot`.
func (f field) load(slot int) []expr.Any {
	reg := register(slot)
	switch f {
	case fieldIPSaddr:
		return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}}
	case fieldIP6Saddr:
		return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}}
	case fieldL4Proto:
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}}
	case fieldIifname:
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg}}
	default: // fieldTHDport, fieldTCPDport, fieldUDPDport
		return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
	}
}

// nfproto returns the dependency a network-header field needs in an inet
// table (meta nfproto ipv4/ipv6), or 0 for none.
func (f field) nfproto() byte {
	switch f {
	case fieldIPSaddr:
		return unix.NFPROTO_IPV4
	case fieldIP6Saddr:
		return unix.NFPROTO_IPV6
	}
	return 0
}

// l4proto returns the dependency a transport-header field of one protocol
// needs (meta l4proto tcp/udp), or 0 for none. nft puts it after the
// nfproto dependency and leaves it out when it lists the rule.
func (f field) l4proto() byte {
	switch f {
	case fieldTCPDport:
		return unix.IPPROTO_TCP
	case fieldUDPDport:
		return unix.IPPROTO_UDP
	}
	return 0
}

// loadKey returns the expressions that load key into the registers from
// register 1 on, as nft emits them for a lookup or an update.
func loadKey(key []field) []expr.Any {
	var out []expr.Any
	slot := 0
	for _, f := range key {
		out = append(out, f.load(slot)...)
		slot += (f.size() + 3) / 4
	}
	return out
}

// ctBits is a ct key whose register has any of bits set, as nft emits
// `ct state established` or `ct status assured`.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ipsAssured is IPS_ASSURED, the conntrack status bit `ct status assured`
// tests; ipsDstNAT is IPS_DST_NAT (`ct status dnat`).
const (
	ipsAssured = 1 << 2
	ipsDstNAT  = 1 << 5
)

func (m match) exprs() []expr.Any {
	switch m.kind {
	case matchCtState:
		return ctBits(expr.CtKeySTATE, m.states)
	case matchCtAssured:
		return ctBits(expr.CtKeySTATUS, ipsAssured)
	case matchCtDNAT:
		return ctBits(expr.CtKeySTATUS, ipsDstNAT)
	case matchCtOrigDaddr:
		// As nft emits `meta nfproto ipv4 ct original daddr A`, which it
		// lists as `ct original ip daddr A` (google/nftables v0.3.0 sends
		// no direction for the ct keys of one family, dst_ip/dst_ip6).
		nfproto, addr := byte(unix.NFPROTO_IPV6), m.addr.AsSlice()
		if m.addr.Is4() {
			nfproto = unix.NFPROTO_IPV4
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			&expr.Ct{Register: 1, Key: expr.CtKeyDST, Direction: 0},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
		}
	case matchCtOrigDport:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeyPROTODST, Direction: 0},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.port)},
		}
	case matchCtOrig:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
		}
	case matchLoopback:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(loopbackIndex)},
		}
	case matchL4Proto:
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.proto)}},
		}
	}
	var out []expr.Any
	for _, f := range m.key {
		if p := f.nfproto(); p != 0 {
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
		}
	}
	for _, f := range m.key {
		if p := f.l4proto(); p != 0 {
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
		}
	}
	out = append(out, loadKey(m.key)...)
	return append(out, &expr.Lookup{SourceRegister: 1, SetName: m.set, Invert: m.invert})
}

func (u *update) exprs() []expr.Any {
	return append(loadKey(u.key), &expr.Dynset{
		SrcRegKey: 1, SetName: u.set, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: u.timeout,
	})
}

func (v verdict) exprs() []expr.Any {
	switch v {
	case verdictDrop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	case verdictRejectTCPReset:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
	case verdictRejectICMPX:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}}
	case verdictNone:
		return nil
	case verdictReturn:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}
	}
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
}

func (r ruleModel) exprs() []expr.Any {
	var out []expr.Any
	for _, m := range r.matches {
		out = append(out, m.exprs()...)
	}
	if r.update != nil {
		out = append(out, r.update.exprs()...)
	}
	return append(out, r.verdict.exprs()...)
}

// nfChain is the base chain declaration for table t.
func (c chainModel) nfChain(t *nftables.Table) *nftables.Chain {
	prio := nftables.ChainPriority(c.priority)
	pol := nftables.ChainPolicyAccept
	hook := nftables.ChainHookInput
	if c.hook == chainForward {
		hook = nftables.ChainHookForward
	}
	return &nftables.Chain{
		Name:     c.name,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  hook,
		Priority: &prio,
		Policy:   &pol,
	}
}

package doctor

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// rawRules lists the rules of chain over raw netlink, for the chains that
// google/nftables v0.3.0 cannot read back: the kernel dumps a ct
// expression's direction (`ct original proto-dst`, as sesame's own forward
// chain and a fix for a forwarded port use) as one byte, and GetRules wants
// four ("attribute 3 is not a uint32"). Each expression is decoded with
// expr.Unmarshal, except ct, decoded here; an expression it does not know
// is left out, as GetRules does.
func rawRules(netns int, t *nftables.Table, chain string) ([]*nftables.Rule, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("dial nfnetlink: %w", err)
	}
	defer c.Close()
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_RULE_TABLE, t.Name)
	ae.String(unix.NFTA_RULE_CHAIN, chain)
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	hdr := []byte{byte(t.Family), unix.NFNETLINK_V0, 0, 0}
	replies, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append(hdr, b...),
	})
	if err != nil {
		return nil, err
	}
	var out []*nftables.Rule
	for _, m := range replies {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		r := &nftables.Rule{Table: t}
		ch := ""
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				ch = ad.String()
			case unix.NFTA_RULE_HANDLE:
				r.Handle = ad.Uint64()
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(ad *netlink.AttributeDecoder) error {
					r.Exprs = rawExprs(byte(t.Family), ad)
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		if ch == chain {
			out = append(out, r)
		}
	}
	return out, nil
}

// rawExprs decodes a rule's list of expressions.
func rawExprs(fam byte, list *netlink.AttributeDecoder) []expr.Any {
	var out []expr.Any
	for list.Next() {
		ad, err := netlink.NewAttributeDecoder(list.Bytes())
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.BigEndian
		var name string
		var data []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_EXPR_NAME:
				name = ad.String()
			case unix.NFTA_EXPR_DATA:
				data = ad.Bytes()
			}
		}
		if name == "notrack" {
			out = append(out, &expr.Notrack{})
			continue
		}
		if name == "ct" {
			out = append(out, rawCt(data))
			continue
		}
		e := exprOf(name)
		if e == nil {
			out = append(out, &expr.Match{Name: name}) // an unknown condition, as the doctor sees it
			continue
		}
		if expr.Unmarshal(fam, data, e) != nil {
			out = append(out, &expr.Match{Name: name})
			continue
		}
		if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
			v := &expr.Verdict{}
			if expr.Unmarshal(fam, data, v) == nil {
				e = v
			}
		}
		out = append(out, e)
	}
	return out
}

// rawCt decodes a ct expression, its direction one byte or four.
func rawCt(data []byte) *expr.Ct {
	e := &expr.Ct{}
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return e
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_CT_KEY:
			e.Key = expr.CtKey(ad.Uint32())
		case unix.NFTA_CT_DREG:
			e.Register = ad.Uint32()
		case unix.NFTA_CT_SREG:
			e.Register, e.SourceRegister = ad.Uint32(), true
		case unix.NFTA_CT_DIRECTION:
			if b := ad.Bytes(); len(b) > 0 {
				e.Direction = uint32(b[0])
			}
		}
	}
	return e
}

// exprOf returns an empty expression of the kind the kernel names, for
// the kinds convertRule reads; nil for the others.
func exprOf(name string) expr.Any {
	switch name {
	case "meta":
		return &expr.Meta{}
	case "payload":
		return &expr.Payload{}
	case "cmp":
		return &expr.Cmp{}
	case "range":
		return &expr.Range{}
	case "bitwise":
		return &expr.Bitwise{}
	case "lookup":
		return &expr.Lookup{}
	case "immediate":
		return &expr.Immediate{}
	case "fib":
		return &expr.Fib{}
	case "nat":
		return &expr.NAT{}
	case "redir":
		return &expr.Redir{}
	case "reject":
		return &expr.Reject{}
	case "queue":
		return &expr.Queue{}
	case "target":
		return &expr.Target{}
	case "match":
		return &expr.Match{}
	case "counter":
		return &expr.Counter{}
	case "log":
		return &expr.Log{}
	case "limit":
		return &expr.Limit{}
	case "dynset":
		return &expr.Dynset{}
	case "masq":
		return &expr.Masq{}
	}
	return nil
}

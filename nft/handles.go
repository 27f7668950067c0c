package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ruleHandles returns the handles of the rules of chain, in order, with
// ENOENT when the chain (or table) does not exist. google/nftables v0.3.0
// cannot read the forward chain's rules back: the kernel dumps a ct
// expression's direction as one byte and GetRules wants four ("attribute 3
// is not a uint32"), so the handles are read here, and nothing else.
func ruleHandles(netns int, table, chain string) ([]uint64, error) {
	w, err := dialWire(netns)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_RULE_TABLE, table)
	ae.String(unix.NFTA_RULE_CHAIN, chain)
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	w.seq++
	replies, err := w.c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags:    netlink.Request | netlink.Dump,
			Sequence: w.seq,
		},
		Data: append(nfHeader(unix.NFPROTO_INET, 0), b...),
	})
	if err != nil {
		return nil, fmt.Errorf("list rules of chain %s: %w", chain, err)
	}
	out := []uint64{}
	for _, m := range replies {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("decode rule of chain %s: %w", chain, err)
		}
		var ch string
		var h uint64
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				ch = ad.String()
			case unix.NFTA_RULE_HANDLE:
				if b := ad.Bytes(); len(b) == 8 {
					h = binary.BigEndian.Uint64(b)
				}
			}
		}
		if ch == chain {
			out = append(out, h)
		}
	}
	return out, nil
}

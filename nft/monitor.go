package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// monitorBuffer is the monitor socket's receive buffer. Every commit of
// every table in the namespace is multicast to it (grant writes too), so
// a burst can overflow it: Watch then reports a change (ENOBUFS: events
// were lost), which costs one Verify.
const monitorBuffer = 1 << 20

// Watch calls changed whenever the kernel reports that someone changed
// t's table: the table, a chain, a rule, a set, or an element of the
// guarded set (the nftables monitor, netlink group NFNLGRP_NFTABLES, as
// `nft monitor` reads it), and when events were lost. Elements of the
// grant sets are not reported: they are grants, written by sesame (Apply,
// `sesame grant`) and expired by the kernel. Sesame's own Ensure is
// reported like anyone's change; Verify then finds nothing. Watch also
// calls changed once it has subscribed, for what changed before. changed runs
// on Watch's goroutine and must not block. Watch returns ctx's error when
// ctx ends, after closing its socket, or an error if it cannot subscribe
// or read.
//
// It reads the netlink messages itself rather than through google/nftables'
// Monitor (v0.3.0), which filters event types with `flags&1<<type` (Go
// reads it as (flags&1)<<type: one object kind alone, such as rules, gets
// nothing, and a mix gets everything), decodes every element of every
// grant into Go values, and blocks its goroutine on an unbuffered channel
// after an error.
func (t *Table) Watch(ctx context.Context, changed func()) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: t.opts.netns})
	if err != nil {
		return fmt.Errorf("open nftables monitor: %w", err)
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { c.Close(); close(closed) }) // ends a Receive
	defer func() {
		if stop() {
			c.Close()
		} else {
			<-closed
		}
	}()
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		return fmt.Errorf("join the nftables monitor group: %w", err)
	}
	_ = c.SetReadBuffer(monitorBuffer) // best effort: ENOBUFS is handled
	changed()
	for {
		msgs, err := c.Receive()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, unix.ENOBUFS):
			changed()
			continue
		case err != nil:
			return fmt.Errorf("read nftables events: %w", err)
		}
		for _, m := range msgs {
			if touches(m, t.name) {
				changed()
				break
			}
		}
	}
}

// touches reports whether m is an nftables event on table inet name other
// than a change to a grant set's elements.
func touches(m netlink.Message, name string) bool {
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 || m.Data[0] != unix.NFPROTO_INET {
		return false
	}
	elems := false
	switch typ := m.Header.Type & 0xff; typ {
	case unix.NFT_MSG_NEWGEN:
		return false // ends every commit: names no table
	case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM, nfMsgDestroySetElem:
		elems = true
	}
	// The table's name is attribute 1 of every object's message
	// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
	// NFTA_SET_ELEM_LIST_TABLE, ...); an element list's set is attribute
	// 2 (NFTA_SET_ELEM_LIST_SET).
	table, set, ok := attrs12(m.Data[4:])
	if !ok || string(table) != name { // compared without a copy
		return false
	}
	return !elems || string(set) == setGuarded
}

// attrs12 returns the string values of netlink attributes 1 and 2 in b,
// without their NUL, as slices of b. ok is false when b is malformed.
func attrs12(b []byte) (a1, a2 []byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, nil, false
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
		if n < 4 || n > len(b) {
			return nil, nil, false
		}
		v := b[4:n]
		if len(v) > 0 && v[len(v)-1] == 0 {
			v = v[:len(v)-1] // NUL-terminated
		}
		switch typ {
		case 1:
			a1 = v
		case 2:
			a2 = v
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return a1, a2, true
}

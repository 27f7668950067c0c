package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// wire is sesame's own nfnetlink connection for set elements. google/nftables
// v0.3.0 cannot send what grants need: NFT_MSG_DESTROYSETELEM (kernel ≥6.3)
// next to NFT_MSG_NEWSETELEM in one batch, NFTA_SET_ELEM_EXPIRATION, or tell
// which message of a batch failed. Owning the conn also fixes two of its
// bugs: acks are matched by sequence number (a stale ACK from an earlier
// batch is skipped, not taken for ours), and element lists are split by
// their encoded size so no nested attribute overflows its 16-bit length.
type wire struct {
	c   *netlink.Conn
	seq uint32
}

// nfMsgDestroySetElem is NFT_MSG_DESTROYSETELEM (Linux ≥6.3): delete
// elements, ignoring those that are gone. x/sys/unix does not name it yet.
const nfMsgDestroySetElem = 0x1e

// ackTimeout bounds the wait for the kernel's answers to a batch; the
// kernel answers before sendmsg returns, so this only guards against a bug.
const ackTimeout = 10 * time.Second

// maxListBytes bounds one message's encoded element list, well below the
// 64 KiB that a netlink attribute length can express.
const maxListBytes = 48 << 10

var seqBase atomic.Uint32

func dialWire(netns int) (*wire, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("dial nfnetlink: %w", err)
	}
	// Large batches (thousands of grants) must fit the socket buffer, or the
	// send fails with EMSGSIZE.
	if err := c.SetWriteBuffer(writeBuffer); err != nil {
		c.Close()
		return nil, fmt.Errorf("set netlink write buffer: %w", err)
	}
	// Errors carry only the failed message's header, not its payload, and
	// the receive buffer holds thousands of them: a batch of deletes of
	// missing elements (the fallback path) answers one error per message.
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("set NETLINK_CAP_ACK: %w", err)
	}
	if err := setReadBuffer(c, readBuffer); err != nil {
		c.Close()
		return nil, err
	}
	// Start each conn's sequence numbers apart so that replies meant for
	// another conn can never look like ours.
	return &wire{c: c, seq: seqBase.Add(1 << 20)}, nil
}

func (w *wire) Close() error { return w.c.Close() }

// writeBuffer is the netlink socket's send buffer (also set on the
// google/nftables conns); readBuffer its receive buffer.
const (
	writeBuffer = 8 << 20
	readBuffer  = 16 << 20
)

// setReadBuffer sets the receive buffer beyond net.core.rmem_max when the
// process may (CAP_NET_ADMIN, which nftables needs anyway), else as far as
// rmem_max allows.
func setReadBuffer(c *netlink.Conn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink raw conn: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return fmt.Errorf("netlink raw conn: %w", err)
	}
	if serr != nil {
		if err := c.SetReadBuffer(n); err != nil {
			return fmt.Errorf("set netlink read buffer: %w", err)
		}
	}
	return nil
}

func nfHeader(family uint8, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

// elem is one set element to write.
type elem struct {
	key     []byte
	timeout time.Duration // 0: key only (deletes)
	comment string
}

// elemMsgs encodes elements of one set as messages of type typ (NEWSETELEM,
// DELSETELEM or DESTROYSETELEM), as many as the size bound needs.
func elemMsgs(typ uint16, table, set string, elems []elem) ([]netlink.Message, error) {
	var msgs []netlink.Message
	for len(elems) > 0 {
		ae := netlink.NewAttributeEncoder()
		ae.ByteOrder = binary.BigEndian
		ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, table)
		ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
		n, size := 0, 0
		ae.Nested(unix.NFTA_SET_ELEM_LIST_ELEMENTS, func(le *netlink.AttributeEncoder) error {
			for ; n < len(elems) && size < maxListBytes; n++ {
				e := elems[n]
				size += 32 + len(e.key) + len(e.comment)
				le.Nested(uint16(n+1), func(ee *netlink.AttributeEncoder) error {
					ee.Nested(unix.NFTA_SET_ELEM_KEY, func(ke *netlink.AttributeEncoder) error {
						ke.Bytes(unix.NFTA_DATA_VALUE, e.key)
						return nil
					})
					if e.timeout > 0 {
						ms := uint64(e.timeout.Milliseconds())
						ee.Uint64(unix.NFTA_SET_ELEM_TIMEOUT, ms)
						// Sent too so that kernels which update elements in
						// place (≥6.12) restart the timer even without the
						// destroy that precedes every add.
						ee.Uint64(unix.NFTA_SET_ELEM_EXPIRATION, ms)
					}
					if e.comment != "" {
						ee.Bytes(unix.NFTA_SET_ELEM_USERDATA,
							userdata.AppendString(nil, userdata.NFTNL_UDATA_SET_ELEM_COMMENT, e.comment))
					}
					return nil
				})
			}
			return nil
		})
		b, err := ae.Encode()
		if err != nil {
			return nil, fmt.Errorf("encode elements of %s: %w", set, err)
		}
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ),
				Flags: netlink.Request | netlink.Acknowledge | netlink.Create,
			},
			Data: append(nfHeader(unix.NFPROTO_INET, 0), b...),
		})
		elems = elems[n:]
	}
	return msgs, nil
}

// batchError is a failed batch: the kernel applied none of it. Failed maps
// the index of each rejected message to its error.
type batchError struct {
	Failed map[int]error
}

func (e *batchError) Error() string {
	var errs []error
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return fmt.Sprintf("nftables batch rejected: %v", errors.Join(errs...))
}

// Unwrap lets errors.Is see the kernel's errnos.
func (e *batchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// batch sends msgs as one transaction and waits for the kernel's answer.
// Only the last message asks for an ack: the kernel reports every failed
// message (errors are sent even unasked) after processing the whole batch,
// then answers the last one, so its answer ends the exchange and a
// successful batch costs one ack. A *batchError says which messages were
// refused; any other error means the conn is in an unknown state and
// should be replaced.
func (w *wire) batch(msgs []netlink.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	all := make([]netlink.Message, 0, len(msgs)+2)
	all = append(all, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
		Data:   nfHeader(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
	})
	all = append(all, msgs...)
	all = append(all, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request},
		Data:   nfHeader(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
	})
	first := w.seq + 1
	for i := range all {
		w.seq++
		all[i].Header.Sequence = w.seq
		if i > 0 && i <= len(msgs) {
			all[i].Header.Flags &^= netlink.Acknowledge
		}
	}
	last := w.seq - 1 // the last message before batch end
	all[len(msgs)].Header.Flags |= netlink.Acknowledge
	if _, err := w.c.SendMessages(all); err != nil {
		return fmt.Errorf("send nftables batch: %w", err)
	}
	if err := w.c.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
		return fmt.Errorf("set netlink deadline: %w", err)
	}
	// index returns the position in msgs of the message with sequence s,
	// -1 for the batch begin, or false for a reply that is not ours.
	index := func(s uint32) (int, bool) {
		return int(s-first) - 1, s >= first && s <= last
	}
	failed := map[int]error{}
	for done := false; !done; {
		replies, err := w.c.Receive()
		if err != nil {
			var oe *netlink.OpError
			if !errors.As(err, &oe) || oe.Sequence == 0 {
				return fmt.Errorf("read nftables acks: %w", err)
			}
			i, ours := index(oe.Sequence)
			switch {
			case !ours: // a stale answer to an earlier exchange
			case i < 0: // refused as a whole (EPERM, ENOMEM): no more answers
				return &batchError{Failed: map[int]error{-1: oe.Err}}
			default:
				failed[i] = oe.Err
				done = oe.Sequence == last
			}
			continue
		}
		for _, m := range replies {
			if m.Header.Type == netlink.Error && m.Header.Sequence == last {
				done = true
			}
		}
	}
	if len(failed) > 0 {
		return &batchError{Failed: failed}
	}
	return nil
}

// setComment returns the comment of a set, with ENOENT when the set (or
// table) does not exist.
func (w *wire) setComment(table, set string) (string, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_TABLE, table)
	ae.String(unix.NFTA_SET_NAME, set)
	b, err := ae.Encode()
	if err != nil {
		return "", err
	}
	w.seq++
	replies, err := w.c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSET),
			Flags:    netlink.Request,
			Sequence: w.seq,
		},
		Data: append(nfHeader(unix.NFPROTO_INET, 0), b...),
	})
	if err != nil {
		return "", fmt.Errorf("get set %s: %w", set, err)
	}
	for _, m := range replies {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return "", fmt.Errorf("decode set %s: %w", set, err)
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_SET_USERDATA {
				c, _ := userdata.GetString(ad.Bytes(), userdata.NFTNL_UDATA_SET_COMMENT)
				return c, nil
			}
		}
	}
	return "", nil
}

// probeDestroy reports whether the kernel knows NFT_MSG_DESTROYSETELEM. It
// sends one for an element of a table that does not exist: a kernel that
// knows the message answers ENOENT, an older one EINVAL (unknown type).
// The element list is never empty, so the probe can never flush a set.
func (w *wire) probeDestroy() (bool, error) {
	msgs, err := elemMsgs(nfMsgDestroySetElem, fmt.Sprintf("sesame-probe-%d", w.seq), "probe",
		[]elem{{key: make([]byte, 12)}})
	if err != nil {
		return false, err
	}
	err = w.batch(msgs)
	var be *batchError
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.As(err, &be):
		return false, nil
	}
	return false, err
}

// existing reports which keys of a set exist, with one NFT_MSG_GETSETELEM
// per key (a missing key answers ENOENT), sent together: one round trip per
// chunk and no transaction, so no costly abort.
func (w *wire) existing(table, set string, keys []elem) ([]bool, error) {
	const chunk = 1000
	out := make([]bool, 0, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		var msgs []netlink.Message
		for _, k := range keys[:n] {
			m, err := elemMsgs(unix.NFT_MSG_GETSETELEM, table, set, []elem{{key: k.key}})
			if err != nil {
				return nil, err
			}
			m[0].Header.Flags = netlink.Request
			w.seq++
			m[0].Header.Sequence = w.seq
			msgs = append(msgs, m[0])
		}
		first := msgs[0].Header.Sequence
		found := make([]bool, n)
		if _, err := w.c.SendMessages(msgs); err != nil {
			return nil, fmt.Errorf("send element queries: %w", err)
		}
		if err := w.c.SetReadDeadline(time.Now().Add(ackTimeout)); err != nil {
			return nil, fmt.Errorf("set netlink deadline: %w", err)
		}
		for answered := 0; answered < n; {
			replies, err := w.c.Receive()
			if err != nil {
				var oe *netlink.OpError
				switch {
				case !errors.As(err, &oe) || oe.Sequence == 0:
					return nil, fmt.Errorf("read element queries: %w", err)
				case oe.Sequence-first >= uint32(n):
					continue // a stale answer to an earlier exchange
				case !errors.Is(oe.Err, unix.ENOENT):
					return nil, fmt.Errorf("query element of set %s: %w", set, oe.Err)
				}
				answered++
				continue
			}
			for _, m := range replies {
				if i := m.Header.Sequence - first; i < uint32(n) && m.Header.Type != netlink.Error {
					found[i] = true
					answered++
				}
			}
		}
		out = append(out, found...)
		keys = keys[n:]
	}
	return out, nil
}

// flushMsg is a DELSETELEM without an element list: it empties the set.
func flushMsg(table, set string) (netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
	b, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, fmt.Errorf("encode flush of %s: %w", set, err)
	}
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELSETELEM),
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: append(nfHeader(unix.NFPROTO_INET, 0), b...),
	}, nil
}

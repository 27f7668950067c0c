package nft

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// maxRetries bounds the fallback's retries when grants expire while it runs.
const maxRetries = 4

// Apply writes grants and revokes in one transaction: all of them or, on
// error, none. A key both revoked and granted ends up granted.
//
// Restarting a live grant's timer: re-adding an element does not (kernels
// before 6.12 ignore the add, and google/nftables v0.3.0 cannot send
// NFTA_SET_ELEM_EXPIRATION). So every granted key is deleted and added
// again in the same batch, which creates a fresh element with a full
// timeout on every kernel. Deleting must not fail when the element is
// already gone (expired, or never there):
//   - Linux ≥6.3 has NFT_MSG_DESTROYSETELEM, a delete that ignores missing
//     elements: one batch of destroys then adds, no extra round trip.
//   - Older kernels (Debian 12's 6.1) only have DELSETELEM, which fails the
//     batch with ENOENT. There each key gets its own DELSETELEM message, so
//     the kernel's answers say exactly which keys are missing; those deletes
//     are dropped and the batch is sent again (the kernel applied nothing).
//
// The adds also carry NFTA_SET_ELEM_EXPIRATION, so kernels that update an
// element in place restart it even by themselves. Elements are chunked by
// encoded size, and the conn has a large send buffer: thousands of grants
// fit one batch. Apply runs on a lasting conn, replaced after any error.
func (t *Table) Apply(grants []Grant, revokes []Revoke) error {
	ops, err := planOps(grants, revokes)
	if err != nil {
		return err
	}
	if len(grants) == 0 && len(revokes) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		w, err := dialWire(t.opts.netns)
		if err != nil {
			return err
		}
		t.w = w
	}
	if !t.probed {
		ok, err := t.w.probeDestroy()
		if err != nil {
			t.dropConn()
			return fmt.Errorf("probe kernel for DESTROYSETELEM: %w", err)
		}
		t.destroy, t.probed = ok && !t.opts.noDestroy, true
	}
	if t.destroy {
		err = t.applyDestroy(ops)
	} else {
		err = t.applyDelete(ops)
	}
	var be *batchError
	if err != nil && !errors.As(err, &be) {
		t.dropConn()
	}
	if err != nil {
		return fmt.Errorf("write grants to table inet %s: %w", t.name, err)
	}
	return nil
}

func (t *Table) dropConn() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
}

// setOrder fixes the order of sets in a batch.
var setOrder = []string{setGrants4, setGrants6}

func (t *Table) applyDestroy(ops map[string]*setOps) error {
	var msgs []netlink.Message
	for _, set := range setOrder {
		m, err := elemMsgs(nfMsgDestroySetElem, t.name, set, ops[set].dels)
		if err != nil {
			return err
		}
		msgs = append(msgs, m...)
	}
	adds, err := t.addMsgs(ops)
	if err != nil {
		return err
	}
	return t.w.batch(append(msgs, adds...))
}

func (t *Table) addMsgs(ops map[string]*setOps) ([]netlink.Message, error) {
	var msgs []netlink.Message
	for _, set := range setOrder {
		m, err := elemMsgs(unix.NFT_MSG_NEWSETELEM, t.name, set, ops[set].adds)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m...)
	}
	return msgs, nil
}

// applyDelete is Apply for kernels without DESTROYSETELEM: it deletes only
// the keys that exist, one DELSETELEM each; if some expire meanwhile, the
// kernel's answers name them and the next attempt leaves them out.
func (t *Table) applyDelete(ops map[string]*setOps) error {
	adds, err := t.addMsgs(ops)
	if err != nil {
		return err
	}
	// Ask first which keys exist: a batch that fails costs the kernel an
	// abort (milliseconds), a query a few microseconds.
	gone := map[string]bool{}
	for _, set := range setOrder {
		if t.opts.noQuery {
			break
		}
		found, err := t.w.existing(t.name, set, ops[set].dels)
		if err != nil {
			return err
		}
		for i, ok := range found {
			if !ok {
				gone[string(ops[set].dels[i].key)] = true
			}
		}
	}
	for range maxRetries {
		var msgs []netlink.Message
		var keys []string
		for _, set := range setOrder {
			for _, d := range ops[set].dels {
				if gone[string(d.key)] {
					continue
				}
				m, err := elemMsgs(unix.NFT_MSG_DELSETELEM, t.name, set, []elem{d})
				if err != nil {
					return err
				}
				msgs = append(msgs, m...)
				keys = append(keys, string(d.key))
			}
		}
		err := t.w.batch(append(msgs, adds...))
		var be *batchError
		if err == nil || !errors.As(err, &be) {
			return err
		}
		for i, e := range be.Failed {
			if i < 0 || i >= len(keys) || !errors.Is(e, unix.ENOENT) {
				return err // not (only) missing elements
			}
			gone[keys[i]] = true
		}
	}
	return errors.New("grants kept expiring while being written; giving up")
}

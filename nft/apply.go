package nft

import (
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/logevent"
)

// maxRetries bounds the fallback's retries when grants expire while it runs.
const maxRetries = 4

// ApplyError is what one Apply could not write; everything else landed.
type ApplyError struct {
	Grants  []error // Grants[i] is nil when grants[i] landed
	Revokes []error // Revokes[i] is nil when revokes[i] was applied
}

func (e *ApplyError) Error() string {
	var g, r int
	var first error
	for _, list := range [][]error{e.Grants, e.Revokes} {
		for _, err := range list {
			if err != nil && first == nil {
				first = err
			}
		}
	}
	for _, err := range e.Grants {
		if err != nil {
			g++
		}
	}
	for _, err := range e.Revokes {
		if err != nil {
			r++
		}
	}
	return fmt.Sprintf("%d of %d grants and %d of %d revokes failed: %v", g, len(e.Grants), r, len(e.Revokes), first)
}

// Unwrap returns the distinct errors, so that errors.Is sees the kernel's
// errnos (unix.ENFILE: a set is full).
func (e *ApplyError) Unwrap() []error {
	var out []error
	seen := map[error]bool{}
	for _, list := range [][]error{e.Grants, e.Revokes} {
		for _, err := range list {
			if err != nil && !seen[err] {
				seen[err] = true
				out = append(out, err)
			}
		}
	}
	return out
}

func (e *ApplyError) failed() bool { return len(e.Unwrap()) > 0 }

// GrantErr returns why grant i of the Apply that returned err did not land,
// or nil when it landed.
func GrantErr(err error, i int) error {
	var ae *ApplyError
	if errors.As(err, &ae) {
		if i < len(ae.Grants) {
			return ae.Grants[i]
		}
		return nil
	}
	return err
}

// RevokeErr returns why revoke i of the Apply that returned err was not
// applied, or nil when it was.
func RevokeErr(err error, i int) error {
	var ae *ApplyError
	if errors.As(err, &ae) {
		if i < len(ae.Revokes) {
			return ae.Revokes[i]
		}
		return nil
	}
	return err
}

// SetError is the kernel's refusal of what a transaction wrote to one set
// (ENFILE: the set is full; ENOENT: it does not exist).
type SetError struct {
	Set string
	Err error
}

func (e *SetError) Error() string { return fmt.Sprintf("set %s: %v", e.Set, e.Err) }
func (e *SetError) Unwrap() error { return e.Err }

// connError is a failure of the exchange with the kernel rather than a
// refusal by it (the conn is then replaced).
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// invalidError is a grant or revoke that Apply refuses before sending it.
type invalidError struct{ error }

func invalid(format string, args ...any) error { return invalidError{fmt.Errorf(format, args...)} }

// Retryable reports whether a grant or revoke that failed with err may
// land when sent again: neither the kernel (a full set, a missing set) nor
// Apply (a bad grant) refused it; the exchange failed, say.
func Retryable(err error) bool {
	var se *SetError
	var ie invalidError
	return err != nil && !errors.As(err, &se) && !errors.As(err, &ie)
}

// Apply writes grants and revokes, each into its door's own sets (see
// Kind). Everything normally goes in one transaction. When the kernel
// refuses what goes to some sets (one is full, say), the others are
// written again without them, and each refused set is split: its revokes
// alone, then its grants in halving chunks, so that every grant that fits
// lands. The result says per grant and per revoke whether it landed: nil,
// or an *ApplyError (see GrantErr). A key both revoked and granted ends up
// granted.
//
// A pending set (Kind Pending) never refuses a grant for want of room:
// Apply tracks what it put there and deletes the oldest pending elements
// in the same transaction before the set would be full. If the kernel
// still finds it full (elements from before a restart), the set is
// flushed, which is logged, and the grants are written again.
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
	if len(grants) == 0 && len(revokes) == 0 {
		return nil
	}
	res := &ApplyError{Grants: make([]error, len(grants)), Revokes: make([]error, len(revokes))}
	for i := range grants {
		res.Grants[i] = checkGrant(&grants[i])
	}
	var valid []Revoke
	var validAt []int
	for i, r := range revokes {
		if !r.Src.IsValid() {
			res.Revokes[i] = invalid("revoke: invalid source address")
			continue
		}
		valid = append(valid, r)
		validAt = append(validAt, i)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.ready(); err != nil {
		err = &connError{fmt.Errorf("write grants to table inet %s: %w", t.name, err)}
		for i := range res.Grants {
			res.Grants[i] = cmpOr(res.Grants[i], err)
		}
		for i := range res.Revokes {
			res.Revokes[i] = cmpOr(res.Revokes[i], err)
		}
		return res
	}
	sets := plan(grants, valid, t.hasSet, res.Grants)
	for _, sp := range sets {
		for j, r := range sp.revokes {
			sp.revokes[j] = validAt[r]
		}
	}
	t.applyPlans(sets, res, t.now())
	if res.failed() {
		return res
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// ready dials the lasting conn, probes the kernel and learns the table's
// sets, as needed.
func (t *Table) ready() error {
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
	if t.sets == nil {
		return t.loadSets()
	}
	return nil
}

func (t *Table) dropConn() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
}

// setOp is what one transaction writes to one set: a flush, deletes (that
// ignore missing elements), then adds.
type setOp struct {
	set   string
	flush bool
	dels  []elem
	adds  []elem
}

// fail marks what a set plan still had to write as failed with err.
func (res *ApplyError) fail(sp *setPlan, groups []*group, revokes bool, err error) {
	for _, g := range groups {
		for _, i := range g.grants {
			res.Grants[i] = cmpOr(res.Grants[i], err)
		}
	}
	if revokes {
		for _, i := range sp.revokes {
			res.Revokes[i] = cmpOr(res.Revokes[i], err)
		}
	}
}

// applyPlans writes every set's part in one transaction, again without the
// sets the kernel refused, and then splits each refused set.
func (t *Table) applyPlans(sets []*setPlan, res *ApplyError, now time.Time) {
	todo := sets
	var split []*setPlan
	for len(todo) > 0 {
		ops := make([]setOp, len(todo))
		evicted := make([][]string, len(todo))
		for i, sp := range todo {
			ops[i], evicted[i] = t.op(sp.name, sp.dels, sp.groups, now)
		}
		failed, err := t.commit(ops)
		if err != nil {
			for _, sp := range append(todo, split...) {
				res.fail(sp, sp.groups, true, err)
			}
			return
		}
		var next []*setPlan
		for i, sp := range todo {
			if e, ok := failed[i]; ok {
				sp.err = e
				split = append(split, sp)
				continue
			}
			if len(failed) == 0 {
				t.landed(sp.name, sp.dels, sp.groups, evicted[i], now)
			} else {
				next = append(next, sp)
			}
		}
		if len(failed) == 0 {
			break
		}
		todo = next
	}
	for i, sp := range split {
		if err := t.applySplit(sp, res, now); err != nil {
			for _, sp := range split[i+1:] {
				res.fail(sp, sp.groups, true, err)
			}
			return
		}
	}
}

// op builds what one transaction writes to set: the revoked keys, the
// groups' keys deleted and added again (a fresh timer), and for a pending
// set the oldest elements that must go to make room.
func (t *Table) op(set string, revoked []elem, groups []*group, now time.Time) (setOp, []string) {
	op := setOp{set: set}
	seen := map[string]bool{}
	for _, e := range revoked {
		seen[string(e.key)] = true
		op.dels = append(op.dels, e)
	}
	for _, g := range groups {
		for _, e := range g.adds {
			if !seen[string(e.key)] {
				seen[string(e.key)] = true
				op.dels = append(op.dels, elem{key: e.key})
			}
			op.adds = append(op.adds, e)
		}
	}
	evicted := t.evictions(set, revoked, groups, now)
	for _, k := range evicted {
		op.dels = append(op.dels, elem{key: []byte(k)})
	}
	return op, evicted
}

// evictions returns the oldest tracked keys of a pending set that must be
// deleted so that the groups' new keys fit.
func (t *Table) evictions(set string, revoked []elem, groups []*group, now time.Time) []string {
	si := t.sets[set]
	if si == nil || si.fifo == nil {
		return nil
	}
	f := si.fifo
	f.prune(now)
	skip := map[string]bool{}
	n := f.len()
	for _, e := range revoked {
		if f.has(string(e.key)) && !skip[string(e.key)] {
			n--
		}
		skip[string(e.key)] = true
	}
	for _, g := range groups {
		for _, e := range g.adds {
			k := string(e.key)
			if !skip[k] && !f.has(k) {
				n++
			}
			skip[k] = true
		}
	}
	if n <= si.size {
		return nil
	}
	return f.oldest(n-si.size, skip)
}

// landed records what a transaction wrote to set: pending sets track it.
func (t *Table) landed(set string, revoked []elem, groups []*group, evicted []string, now time.Time) {
	si := t.sets[set]
	if si == nil || si.fifo == nil {
		return
	}
	for _, e := range revoked {
		si.fifo.forget(string(e.key))
	}
	for _, k := range evicted {
		si.fifo.forget(k)
	}
	t.evicted.Add(uint64(len(evicted)))
	for _, g := range groups {
		for _, e := range g.adds {
			si.fifo.push(string(e.key), now.Add(e.timeout))
		}
	}
}

// applySplit writes a set whose part of the whole transaction the kernel
// refused: its revokes alone, then its grants in chunks that halve on a
// refusal and double on success. It returns an error only when the conn
// failed (then everything of sp not yet written is marked failed).
func (t *Table) applySplit(sp *setPlan, res *ApplyError, now time.Time) error {
	if len(sp.dels) > 0 {
		failed, err := t.commit([]setOp{{set: sp.name, dels: sp.dels}})
		if err != nil {
			res.fail(sp, sp.groups, true, err)
			return err
		}
		if e, ok := failed[0]; ok {
			res.fail(sp, nil, true, e)
		} else {
			t.landed(sp.name, sp.dels, nil, nil, now)
		}
	}
	gs := sp.groups
	if len(gs) == 0 {
		return nil
	}
	flush := false
	if si := t.sets[sp.name]; si != nil && si.fifo != nil && errors.Is(sp.err, unix.ENFILE) && len(keysOf(gs)) <= si.size {
		// Room was made for these grants, so the set holds elements that
		// sesame does not track: from before a restart or a reload.
		flush = true
	}
	c := max(1, len(gs)/2)
	for len(gs) > 0 {
		n := min(c, len(gs))
		op, evicted := t.op(sp.name, nil, gs[:n], now)
		op.flush = flush
		failed, err := t.commit([]setOp{op})
		if err != nil {
			res.fail(sp, gs, false, err)
			return err
		}
		e, bad := failed[0]
		if !bad {
			if flush {
				si := t.sets[sp.name]
				t.log.Warn(logevent.PendingFlushed,
					"set", sp.name, "size", si.size, "pending", si.fifo.len(), "note", "the set was full of grants sesame did not write (from before a restart?)")
				si.fifo.reset()
				t.flushed.Add(1)
				evicted, flush = nil, false
			}
			t.landed(sp.name, nil, gs[:n], evicted, now)
			gs, c = gs[n:], n*2
			continue
		}
		if n > 1 {
			c = n / 2
			continue
		}
		res.fail(sp, gs[:1], false, e)
		gs, c = gs[1:], 1
		if errors.Is(e, unix.ENFILE) && len(gs) > 0 {
			// The set is full: only grants that refresh live elements
			// can still land.
			var err error
			if gs, err = t.refreshesOnly(sp, gs, e, res); err != nil {
				res.fail(sp, gs, false, err)
				return err
			}
		}
	}
	return nil
}

// refreshesOnly returns the groups whose keys all exist in the set, and
// marks the others failed with full.
func (t *Table) refreshesOnly(sp *setPlan, gs []*group, full error, res *ApplyError) ([]*group, error) {
	found, err := t.w.existing(t.name, sp.name, keysOf(gs))
	if err != nil {
		t.dropConn()
		return gs, &connError{fmt.Errorf("write grants to table inet %s: %w", t.name, err)}
	}
	var keep []*group
	i := 0
	for _, g := range gs {
		all := true
		for range g.adds {
			all = all && found[i]
			i++
		}
		if all {
			keep = append(keep, g)
		} else {
			res.fail(sp, []*group{g}, false, full)
		}
	}
	return keep, nil
}

// commit writes ops in one transaction. It returns the kernel's refusals by
// index into ops (then nothing was applied), or an error (a *connError)
// when the exchange failed.
func (t *Table) commit(ops []setOp) (map[int]error, error) {
	var failed map[int]error
	var err error
	if t.destroy {
		failed, err = t.commitDestroy(ops)
	} else {
		failed, err = t.commitDelete(ops)
	}
	if err != nil {
		var be *batchError
		if !errors.As(err, &be) {
			t.dropConn()
		}
		return nil, &connError{fmt.Errorf("write grants to table inet %s: %w", t.name, err)}
	}
	for i, e := range failed {
		failed[i] = &SetError{Set: ops[i].set, Err: e}
	}
	return failed, nil
}

// refusals maps a batch's failed messages to the ops that sent them.
func refusals(err error, owner []int) (map[int]error, error) {
	var be *batchError
	if !errors.As(err, &be) {
		return nil, err
	}
	failed := map[int]error{}
	for i, e := range be.Failed {
		if i < 0 || i >= len(owner) {
			return nil, err // refused as a whole
		}
		if _, ok := failed[owner[i]]; !ok {
			failed[owner[i]] = e
		}
	}
	return failed, nil
}

func (t *Table) commitDestroy(ops []setOp) (map[int]error, error) {
	var msgs []netlink.Message
	var owner []int
	add := func(i int, m ...netlink.Message) {
		msgs = append(msgs, m...)
		for range m {
			owner = append(owner, i)
		}
	}
	for i, op := range ops {
		if op.flush {
			m, err := flushMsg(t.name, op.set)
			if err != nil {
				return nil, err
			}
			add(i, m)
		}
		m, err := elemMsgs(nfMsgDestroySetElem, t.name, op.set, op.dels)
		if err != nil {
			return nil, err
		}
		add(i, m...)
		if m, err = elemMsgs(unix.NFT_MSG_NEWSETELEM, t.name, op.set, op.adds); err != nil {
			return nil, err
		}
		add(i, m...)
	}
	err := t.w.batch(msgs)
	if err == nil {
		return nil, nil
	}
	return refusals(err, owner)
}

// commitDelete is commit for kernels without DESTROYSETELEM: it deletes
// only the keys that exist, one DELSETELEM each; if some expire meanwhile,
// the kernel's answers name them and the next attempt leaves them out.
func (t *Table) commitDelete(ops []setOp) (map[int]error, error) {
	// Ask first which keys exist: a batch that fails costs the kernel an
	// abort (milliseconds), a query a few microseconds.
	gone := map[string]bool{} // set NUL key
	id := func(set string, k []byte) string { return set + "\x00" + string(k) }
	for _, op := range ops {
		if t.opts.noQuery || op.flush || len(op.dels) == 0 {
			continue
		}
		found, err := t.w.existing(t.name, op.set, op.dels)
		if err != nil {
			return nil, err
		}
		for i, ok := range found {
			if !ok {
				gone[id(op.set, op.dels[i].key)] = true
			}
		}
	}
	for range maxRetries {
		var msgs []netlink.Message
		var owner []int
		var delID []string // per message: the delete's set and key, or ""
		add := func(i int, del string, m ...netlink.Message) {
			msgs = append(msgs, m...)
			for range m {
				owner = append(owner, i)
				delID = append(delID, del)
			}
		}
		for i, op := range ops {
			if op.flush {
				m, err := flushMsg(t.name, op.set)
				if err != nil {
					return nil, err
				}
				add(i, "", m)
			} else {
				for _, d := range op.dels {
					if gone[id(op.set, d.key)] {
						continue
					}
					m, err := elemMsgs(unix.NFT_MSG_DELSETELEM, t.name, op.set, []elem{d})
					if err != nil {
						return nil, err
					}
					add(i, id(op.set, d.key), m...)
				}
			}
			m, err := elemMsgs(unix.NFT_MSG_NEWSETELEM, t.name, op.set, op.adds)
			if err != nil {
				return nil, err
			}
			add(i, "", m...)
		}
		err := t.w.batch(msgs)
		if err == nil {
			return nil, nil
		}
		var be *batchError
		if !errors.As(err, &be) {
			return nil, err
		}
		failed := map[int]error{}
		for mi, e := range be.Failed {
			switch {
			case mi < 0 || mi >= len(owner):
				return nil, err
			case delID[mi] != "" && errors.Is(e, unix.ENOENT):
				gone[delID[mi]] = true // expired meanwhile: leave it out
			default:
				if _, ok := failed[owner[mi]]; !ok {
					failed[owner[mi]] = e
				}
			}
		}
		if len(failed) > 0 {
			return failed, nil
		}
	}
	return nil, errors.New("grants kept expiring while being written; giving up")
}

package nft

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
)

// addSetMu serializes AddSet: google/nftables v0.3.0 allocates set IDs from
// an unlocked global counter.
var addSetMu sync.Mutex

// Ensure creates the table for policy p, or brings an existing one up to
// date, in one transaction: the table, the guarded set, every door's grant
// sets and the input chain are added if missing, the chain's rules and the
// guarded set's elements are replaced. Grant sets are never flushed, so
// live grants survive a restart or reload. The table name is t's, not
// p.Table.
//
// What changes with the config, in the same transaction:
//   - a grant set whose size or flags changed (max_grants, confirm) is
//     deleted and created again with its grants (their time left as their
//     timeout; the longest-lived first when the new size is smaller); a
//     pending set starts empty;
//   - the sets of a door that is gone are deleted, and its grants with them;
//   - the sets of the older layout (grants4 and grants6, shared by every
//     door) are deleted after their grants move into the open sets of the
//     doors in their comments.
func (t *Table) Ensure(p *policy.Policy) error {
	pc := *p
	pc.Table = t.name
	m := buildModel(&pc)

	t.mu.Lock()
	defer t.mu.Unlock()
	if !m.setsOnly {
		if err := t.checkOwner(); err != nil {
			return err
		}
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	var marked map[string]bool // sets mode: the sets that carry sesame's marker
	if m.setsOnly {
		if marked, err = t.markedSets(c, m); err != nil {
			return err
		}
	}
	have := map[string]*nftables.Set{}
	if sets, err := t.kernelSets(c); err == nil {
		for _, s := range sets {
			if !m.setsOnly || marked[s.Name] {
				have[s.Name] = s
			}
		}
	}
	tbl := c.AddTable(t.nfTable())
	// The rules go first: a set that a rule uses cannot be deleted.
	var ch *nftables.Chain
	if !m.setsOnly {
		ch = c.AddChain(m.chain.nfChain(tbl))
		c.FlushChain(ch)
	}
	var fwd *nftables.Chain
	if m.forward != nil && !m.setsOnly {
		fwd = c.AddChain(m.forward.nfChain(tbl))
		c.FlushChain(fwd)
	} else if !m.setsOnly && t.hasChain(c, chainForward) {
		// In sets mode a chain named forward is the admin's: never touched.
		c.DelChain(&nftables.Chain{Name: chainForward, Table: tbl})
	}

	mv := moves{}
	want := map[string]*setModel{}
	for i := range m.sets {
		want[m.sets[i].name] = &m.sets[i]
	}
	fresh := map[string]bool{} // grant sets created empty
	addSetMu.Lock()
	err = func() error {
		defer addSetMu.Unlock()
		for _, legacy := range []string{legacyGrants4, legacyGrants6} {
			if s := have[legacy]; s != nil {
				if err := mv.take(c, s, func(e nftables.SetElement) string {
					return setName(Open, legacy == legacyGrants6, e.Comment)
				}); err != nil {
					return err
				}
				c.DelSet(s)
			}
		}
		for name, s := range have {
			if _, _, _, ok := parseSetName(name); (ok || name == setOutside) && want[name] == nil {
				c.DelSet(s) // a door that is gone, or the last forward target
			}
		}
		for i := range m.sets {
			sm := &m.sets[i]
			old := have[sm.name]
			if old != nil && !sameSet(old, sm) {
				if !sm.kind.pending() {
					if err := mv.take(c, old, func(nftables.SetElement) string { return sm.name }); err != nil {
						return err
					}
				}
				c.DelSet(old)
				mv.recreated = append(mv.recreated, sm.name)
				old = nil
			}
			if old == nil && sm.isGrant() {
				fresh[sm.name] = true
			}
			s := sm.nfSet(tbl)
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("add set %s: %w", sm.name, err)
			}
			if sm.isGrant() {
				if err := mv.put(c, s, sm); err != nil {
					return err
				}
				continue // its elements are live state, never flushed
			}
			c.FlushSet(s)
			elems := make([]nftables.SetElement, 0, len(sm.elems)+len(sm.names))
			for _, e := range sm.elems {
				elems = append(elems, nftables.SetElement{Key: portKey(e)})
			}
			for _, n := range sm.names {
				elems = append(elems, nftables.SetElement{Key: ifnameKey(n)})
			}
			if err := addElements(c, s, elems); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return err
	}
	for _, r := range m.chain.rules {
		if ch != nil {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r.exprs()})
		}
	}
	if fwd != nil {
		for _, r := range m.forward.rules {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: fwd, Exprs: r.exprs()})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table inet %s: %w", t.name, err)
	}
	mv.log(t)
	t.learn(m, fresh)
	return t.record(c, len(p.Guarded()), m)
}

// sameSet reports whether the kernel's set old is what sm declares: a set's
// flags cannot change in place, and its size not on every kernel.
func sameSet(old *nftables.Set, sm *setModel) bool {
	klen := 0
	for _, f := range sm.key {
		klen += (f.size() + 3) / 4 * 4
	}
	return old.HasTimeout == sm.timeout && old.Dynamic == sm.dynamic && old.Size == sm.size &&
		int(old.KeyType.Bytes) == klen && !old.Interval && !old.IsMap
}

// learn updates what Apply knows of the grant sets after Ensure: a pending
// set keeps its tracking unless it was created anew.
func (t *Table) learn(m model, fresh map[string]bool) {
	sets := map[string]*setInfo{}
	for _, sm := range m.sets {
		if !sm.isGrant() {
			continue
		}
		if old := t.sets[sm.name]; old != nil && !fresh[sm.name] && old.kind == sm.kind {
			old.size = int(sm.size)
			sets[sm.name] = old
			continue
		}
		sets[sm.name] = newSetInfo(sm.kind, int(sm.size))
	}
	t.sets = sets
}

// moves carries grants from sets that Ensure deletes into the sets it
// creates, within the same transaction.
type moves struct {
	elems     map[string][]nftables.SetElement // by destination set
	dropped   int                              // grants of doors that are gone
	cut       int                              // grants beyond a smaller size
	moved     int
	recreated []string
}

// take reads the live elements of s and files each under the set that dst
// names for it.
func (mv *moves) take(c *nftables.Conn, s *nftables.Set, dst func(nftables.SetElement) string) error {
	elems, err := c.GetSetElements(s)
	if err != nil {
		return fmt.Errorf("list set %s: %w", s.Name, err)
	}
	if mv.elems == nil {
		mv.elems = map[string][]nftables.SetElement{}
	}
	for _, e := range elems {
		if e.Expires < time.Millisecond && e.Timeout != 0 {
			continue // expiring now
		}
		name := dst(e)
		mv.elems[name] = append(mv.elems[name], e)
	}
	return nil
}

// put adds to s (just declared as sm) the grants filed for it: their time
// left becomes their timeout, and the longest-lived fit first.
func (mv *moves) put(c *nftables.Conn, s *nftables.Set, sm *setModel) error {
	elems := mv.elems[sm.name]
	delete(mv.elems, sm.name)
	if len(elems) == 0 {
		return nil
	}
	slices.SortStableFunc(elems, func(a, b nftables.SetElement) int { return cmp.Compare(b.Expires, a.Expires) })
	if len(elems) > int(sm.size) {
		mv.cut += len(elems) - int(sm.size)
		elems = elems[:sm.size]
	}
	out := make([]nftables.SetElement, len(elems))
	for i, e := range elems {
		ttl := e.Expires.Truncate(time.Millisecond)
		if e.Timeout == 0 && e.Expires == 0 {
			ttl = 0 // no timeout: it stays until revoked
		}
		out[i] = nftables.SetElement{Key: e.Key, Timeout: ttl, Comment: cmp.Or(e.Comment, sm.door)}
	}
	mv.moved += len(out)
	return addElements(c, s, out)
}

// log says what moved, once the transaction is in.
func (mv *moves) log(t *Table) {
	for _, es := range mv.elems {
		mv.dropped += len(es) // their door is gone
	}
	if mv.moved+mv.dropped+mv.cut+len(mv.recreated) == 0 {
		return
	}
	t.log.Warn(logevent.GrantSetsRebuilt, "table", t.name, "recreated", mv.recreated, "grants_moved", mv.moved,
		"grants_dropped", mv.dropped, "grants_over_size", mv.cut,
		"note", "sets of the older layout (grants4, grants6) or whose max_grants or confirm changed are rebuilt with their grants")
}

// addElements adds elems to s in chunks: v0.3.0 truncates large calls
// silently.
func addElements(c *nftables.Conn, s *nftables.Set, elems []nftables.SetElement) error {
	for len(elems) > 0 {
		n := min(len(elems), 500)
		if err := c.SetAddElements(s, elems[:n]); err != nil {
			return fmt.Errorf("add elements to set %s: %w", s.Name, err)
		}
		elems = elems[n:]
	}
	return nil
}

// ifnameKey encodes an interface name as the kernel keys an ifname set:
// IFNAMSIZ bytes, NUL-padded.
func ifnameKey(name string) []byte {
	k := make([]byte, 16)
	copy(k, name)
	return k
}

// hasChain reports whether the table has chain name.
func (t *Table) hasChain(c *nftables.Conn, name string) bool {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false
	}
	for _, ch := range chains {
		if ch.Table.Name == t.name && ch.Name == name {
			return true
		}
	}
	return false
}

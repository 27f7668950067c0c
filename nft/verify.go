package nft

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Drift is how the kernel's table differs from what the last Ensure
// installed: someone ran `nft flush ruleset`, reloaded nftables.service or
// firewalld, or edited sesame's table by hand.
type Drift struct {
	What       string // what changed, for the log; "" means nothing
	GrantsLost bool   // the grant sets went with it: clients must knock again
}

// installed is what Ensure put in the kernel, for Verify to compare with.
type installed struct {
	handles  []uint64 // the input chain's rule handles, in order
	forward  []uint64 // the forward chain's, nil when there is none
	guarded  int      // elements of the guarded set
	sets     []string // every set, the guarded set first
	setsOnly bool     // no chain of sesame's (table_mode = "sets")
}

// record reads back the handles of the rules that Ensure just installed.
func (t *Table) record(c *nftables.Conn, guarded int, m model) error {
	if m.setsOnly {
		t.inst = &installed{guarded: guarded, setsOnly: true}
		for _, s := range m.sets {
			t.inst.sets = append(t.inst.sets, s.name)
		}
		return nil
	}
	handles, err := ruleHandles(t.opts.netns, t.name, chainInput)
	if err != nil {
		return fmt.Errorf("list rules of chain inet %s %s: %w", t.name, chainInput, err)
	}
	t.inst = &installed{guarded: guarded, handles: handles}
	for _, s := range m.sets {
		t.inst.sets = append(t.inst.sets, s.name)
	}
	if m.forward == nil {
		return nil
	}
	if t.inst.forward, err = ruleHandles(t.opts.netns, t.name, chainForward); err != nil {
		return fmt.Errorf("list rules of chain inet %s %s: %w", t.name, chainForward, err)
	}
	return nil
}

// Verify compares the table in the kernel with what the last Ensure
// installed and returns the first difference it finds (a zero Drift when
// there is none, or when Ensure has not run). It costs a few netlink dumps
// of sesame's own table; a daemon calls it when Watch reports a change. It holds
// the table's lock only to read what Ensure installed, not during the
// dumps, so it never delays an Apply (which only changes the grant sets'
// elements, which Verify does not read); a Verify that races an Ensure may
// report a difference that the next Ensure makes moot.
func (t *Table) Verify() (Drift, error) {
	t.mu.Lock()
	inst := t.inst
	t.mu.Unlock()
	if inst == nil {
		return Drift{}, nil
	}
	c, err := t.conn()
	if err != nil {
		return Drift{}, err
	}
	_, err = t.lookupTable(c)
	if errors.Is(err, ErrNoTable) {
		return Drift{What: "table inet " + t.name + " is gone", GrantsLost: true}, nil
	}
	if err != nil {
		return Drift{}, err
	}
	sets, err := c.GetSets(t.nfTable())
	if err != nil {
		return Drift{}, fmt.Errorf("list sets of table inet %s: %w", t.name, err)
	}
	for _, name := range inst.sets {
		if !slices.ContainsFunc(sets, func(s *nftables.Set) bool { return s.Name == name }) {
			return Drift{What: "set " + name + " is gone", GrantsLost: name != setGuarded && name != setOutside}, nil
		}
	}
	if inst.setsOnly {
		return t.verifyGuarded(c, inst)
	}
	for _, ch := range []struct {
		name    string
		handles []uint64
	}{{chainInput, inst.handles}, {chainForward, inst.forward}} {
		if ch.handles == nil {
			continue
		}
		handles, err := ruleHandles(t.opts.netns, t.name, ch.name)
		if errors.Is(err, unix.ENOENT) {
			return Drift{What: "chain " + ch.name + " is gone"}, nil
		}
		if err != nil {
			return Drift{}, fmt.Errorf("list rules of chain inet %s %s: %w", t.name, ch.name, err)
		}
		if !slices.Equal(handles, ch.handles) {
			return Drift{What: fmt.Sprintf("chain %s has %d rules with other handles than the %d sesame installed", ch.name, len(handles), len(ch.handles))}, nil
		}
	}
	return t.verifyGuarded(c, inst)
}

// verifyGuarded compares the guarded set's elements with what Ensure put
// there: a ruleset loaded with nft -f declares the set empty.
func (t *Table) verifyGuarded(c *nftables.Conn, inst *installed) (Drift, error) {
	elems, err := c.GetSetElements(&nftables.Set{Table: t.nfTable(), Name: setGuarded})
	if err != nil {
		return Drift{}, fmt.Errorf("list set %s of table inet %s: %w", setGuarded, t.name, err)
	}
	if len(elems) != inst.guarded {
		return Drift{What: fmt.Sprintf("set %s holds %d elements, want %d", setGuarded, len(elems), inst.guarded)}, nil
	}
	return Drift{}, nil
}

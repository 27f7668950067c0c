package nft

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Sets mode (table_mode = "sets"): the table is the admin's. sesame keeps
// only its sets in it, each marked with the comment ownerComment, and never
// adds, changes or deletes a chain or the table: the admin's own ruleset
// declares the sets and the chain SetsChain (both printed by Ruleset, to
// paste) and jumps to it from its input chain. The marker is per set, not
// per table: Ensure refuses a same-named set without it, and Delete
// removes only marked sets.

// SetsChain is the chain that Ruleset prints in sets mode, for the admin's
// input chain to jump to.
const SetsChain = "sesame_input"

// SetsForwardChain is the chain that Ruleset prints in sets mode when a
// door has forward targets, for the admin's forward chain to jump to.
const SetsForwardChain = "sesame_forward"

// SetsOnly makes Delete remove only sesame's sets from the table, never the
// table (table_mode = "sets").
func SetsOnly() Option { return func(o *options) { o.setsOnly = true } }

// setsOnly turns a full model into sets mode's: every set carries the
// marker, and the chain is a regular chain that returns what is not
// guarded (an accept there would end the admin's base chain for every
// port).
func setsOnly(m *model) {
	m.setsOnly = true
	for i := range m.sets {
		m.sets[i].comment = ownerComment
	}
	m.chain.name, m.chain.regular = SetsChain, true
	rules := m.chain.rules[2:] // after iif "lo" accept and the non-guarded accept
	m.chain.rules = append([]ruleModel{
		{matches: []match{{kind: matchLookup, key: m.sets[0].key, set: setGuarded, invert: true}}, verdict: verdictReturn},
		{matches: []match{{kind: matchLoopback}}, verdict: verdictAccept},
	}, rules...)
	if m.forward != nil {
		setsOnlyForward(m.forward)
	}
}

// setsOnlyForward turns the forward chain into sets mode's: a regular
// chain where only forward targets get a verdict. What does not enter on
// an outside interface returns (an accept would end the admin's base
// chain for all of it), and the accept of established connections is
// per target (targets are rules, not a set, so there is no single
// "not a target" return); what is no target falls off the end and
// returns.
func setsOnlyForward(c *chainModel) {
	c.name, c.hook, c.regular = SetsForwardChain, "", true
	var rules []ruleModel
	for _, r := range c.rules {
		switch {
		case len(r.matches) == 1 && r.matches[0].kind == matchLookup && r.matches[0].set == setOutside:
			r.verdict = verdictReturn // iifname != @outside
		case len(r.matches) == 1 && r.matches[0].kind == matchCtState && r.verdict == verdictAccept:
			// ct state established,related accept: per target.
			for _, tm := range c.targets {
				rules = append(rules, ruleModel{matches: append([]match{r.matches[0]}, tm...), verdict: verdictAccept})
			}
			continue
		}
		rules = append(rules, r)
	}
	c.rules = rules
}

// renderSets prints the sets and the chains to paste into the admin's
// table, and the jumps to add to its input (and forward) chain.
func (m model) renderSets() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# table_mode = \"sets\": paste into your table inet %s (sesame adds the sets\n", m.table)
	b.WriteString("# if they are missing and keeps their elements; it never touches a chain).\n")
	fmt.Fprintf(&b, "table inet %s {\n", m.table)
	for _, s := range m.sets {
		s.render(&b)
		b.WriteString("\n")
	}
	m.chain.render(&b)
	if m.forward != nil {
		b.WriteString("\n")
		m.forward.render(&b)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "# Then make this the first rule of your base chain on the input hook (before\n# ct state established,related accept: a knock is confirmed by the first packet\n# of its established connection; what is not guarded returns at once):\n#\tjump %s\n", SetsChain)
	if m.forward != nil {
		fmt.Fprintf(&b, "# and this the first rule of your base chain on the forward hook (what is not\n# a forward target, or does not enter on an outside interface, returns at once):\n#\tjump %s\n", SetsForwardChain)
	}
	return b.String()
}

// markedSets returns the names of the table's sets that carry sesame's
// marker, and ErrNotOurs when a set that m declares exists without it.
// In sets mode Ensure deletes or converts only marked sets: a set of the
// admin's that happens to have a name like sesame's is never touched.
func (t *Table) markedSets(c *nftables.Conn, m model) (map[string]bool, error) {
	sets, err := t.kernelSets(c)
	if errors.Is(err, ErrNoTable) {
		return nil, nil // Ensure adds the table, with nothing but the sets
	}
	if err != nil {
		return nil, err
	}
	w, err := dialWire(t.opts.netns)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	want := map[string]bool{}
	for _, sm := range m.sets {
		want[sm.name] = true
	}
	marked := map[string]bool{}
	for _, s := range sets {
		_, _, _, ours := parseSetName(s.Name)
		if !ours && !want[s.Name] && s.Name != setOutside && s.Name != legacyGrants4 && s.Name != legacyGrants6 {
			continue
		}
		comment, err := w.setComment(t.name, s.Name)
		if err != nil {
			return nil, fmt.Errorf("inspect set %s of table inet %s: %w", s.Name, t.name, err)
		}
		switch {
		case comment == ownerComment:
			marked[s.Name] = true
		case want[s.Name]:
			return nil, fmt.Errorf("table inet %s: its set %q has comment %q, not %q: rename that set or choose another table: %w",
				t.name, s.Name, comment, ownerComment, ErrNotOurs)
		}
	}
	return marked, nil
}

// deleteSets removes sesame's marked sets from the table and leaves the
// table and everything else in it. A set that the admin's rules still use
// cannot be deleted: the kernel refuses the whole transaction (EBUSY).
func (t *Table) deleteSets() error {
	c, err := t.conn()
	if err != nil {
		return err
	}
	sets, err := t.kernelSets(c)
	if err != nil {
		return err // ErrNoTable when there is no table
	}
	w, err := dialWire(t.opts.netns)
	if err != nil {
		return err
	}
	defer w.Close()
	n := 0
	for _, s := range sets {
		if _, _, _, ok := parseSetName(s.Name); !ok && s.Name != setGuarded && s.Name != setOutside {
			continue
		}
		if comment, err := w.setComment(t.name, s.Name); err != nil || comment != ownerComment {
			continue
		}
		c.DelSet(s)
		n++
	}
	if n == 0 {
		return fmt.Errorf("table inet %s holds no set with comment %q: %w", t.name, ownerComment, ErrNotOurs)
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("delete sesame's sets from table inet %s: your rules still use them (remove the jumps to %s and %s and those chains first): %w", t.name, SetsChain, SetsForwardChain, err)
		}
		return fmt.Errorf("delete sesame's sets from table inet %s: %w", t.name, err)
	}
	return nil
}

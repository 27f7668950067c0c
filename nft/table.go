// Package nft owns sesame's nftables table (family inet): it builds the
// table, sets and input chain from a policy in one transaction, and writes
// grants as set elements that the kernel expires by itself. The layout is
// in DESIGN.md ("nftables layout"); Ruleset renders the same model as text.
package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/sesame-knock/sesame/policy"
	"golang.org/x/sys/unix"
)

// ErrNotOurs is returned by Ensure and Delete when a same-named table
// exists that sesame did not create.
var ErrNotOurs = errors.New("nftables table exists and was not created by sesame")

// ErrNoTable is returned by Delete when the table does not exist.
var ErrNoTable = errors.New("nftables table does not exist")

// Option changes how New connects.
type Option func(*options)

type options struct {
	netns     int
	noDestroy bool // tests: behave as on a kernel without DESTROYSETELEM
	noQuery   bool // tests: skip the fallback's existence queries
}

// WithNetNS makes the table live in the network namespace that fd refers to
// (tests use throwaway namespaces).
func WithNetNS(fd int) Option { return func(o *options) { o.netns = fd } }

// Table is sesame's nftables table. Its methods are safe for concurrent use.
type Table struct {
	name string
	opts options

	mu      sync.Mutex // serializes kernel writes and guards the fields below
	w       *wire      // lasting conn for Apply; nil until needed or after an error
	destroy bool       // the kernel knows NFT_MSG_DESTROYSETELEM
	probed  bool
	inst    *installed // what the last Ensure installed, for Verify
}

// New returns the table with the given name. It does not touch the kernel:
// Ensure creates or updates the table.
func New(table string, opts ...Option) (*Table, error) {
	if table == "" {
		return nil, errors.New("empty nftables table name")
	}
	t := &Table{name: table}
	for _, o := range opts {
		o(&t.opts)
	}
	return t, nil
}

// Close releases the lasting netlink conn. The table stays in the kernel.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return nil
	}
	err := t.w.Close()
	t.w = nil
	return err
}

// conn returns a short-lived google/nftables conn: setup runs on one, as
// batches that load kernel modules can leave a stale ACK on a lasting conn.
func (t *Table) conn() (*nftables.Conn, error) {
	c, err := nftables.New(
		nftables.WithNetNSFd(t.opts.netns),
		nftables.WithSockOptions(func(c *netlink.Conn) error { return c.SetWriteBuffer(writeBuffer) }),
	)
	if err != nil {
		return nil, fmt.Errorf("open nftables conn: %w", err)
	}
	return c, nil
}

func (t *Table) nfTable() *nftables.Table {
	return &nftables.Table{Name: t.name, Family: nftables.TableFamilyINet}
}

// addSetMu serializes AddSet: google/nftables v0.3.0 allocates set IDs from
// an unlocked global counter.
var addSetMu sync.Mutex

// Ensure creates the table for policy p, or brings an existing one up to
// date, in one transaction: table, the three sets and the input chain are
// added if missing, the chain's rules and the guarded set's elements are
// replaced. The grant sets are never flushed, so live grants survive a
// restart or reload. The table name is t's, not p.Table.
func (t *Table) Ensure(p *policy.Policy) error {
	pc := *p
	pc.Table = t.name
	m := buildModel(&pc)

	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkOwner(); err != nil {
		return err
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	tbl := c.AddTable(t.nfTable())
	addSetMu.Lock()
	for _, sm := range m.sets {
		s := sm.nfSet(tbl)
		if err := c.AddSet(s, nil); err != nil {
			addSetMu.Unlock()
			return fmt.Errorf("add set %s: %w", sm.name, err)
		}
		if sm.timeout {
			continue // a grant set: its elements are live state, never flushed
		}
		c.FlushSet(s)
		elems := make([]nftables.SetElement, len(sm.elems))
		for i, e := range sm.elems {
			elems[i] = nftables.SetElement{Key: portKey(e)}
		}
		for len(elems) > 0 { // v0.3.0 truncates large calls silently
			n := min(len(elems), 500)
			if err := c.SetAddElements(s, elems[:n]); err != nil {
				addSetMu.Unlock()
				return fmt.Errorf("add elements to set %s: %w", sm.name, err)
			}
			elems = elems[n:]
		}
	}
	addSetMu.Unlock()
	ch := c.AddChain(m.chain.nfChain(tbl))
	c.FlushChain(ch)
	for _, r := range m.chain.rules {
		c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r.exprs()})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table inet %s: %w", t.name, err)
	}
	return t.record(c, len(p.Guarded()))
}

// checkOwner returns ErrNotOurs when a table of t's name exists, holds
// something, and lacks sesame's marker: the comment ownerComment on its
// guarded set.
func (t *Table) checkOwner() error {
	w, err := dialWire(t.opts.netns)
	if err != nil {
		return err
	}
	defer w.Close()
	comment, err := w.setComment(t.name, setGuarded)
	switch {
	case err == nil && comment == ownerComment:
		return nil
	case err != nil && !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("inspect table inet %s: %w", t.name, err)
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	tbl, err := c.ListTableOfFamily(t.name, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) || (err == nil && tbl == nil) {
		return nil // no table yet
	}
	if err != nil {
		return fmt.Errorf("list table inet %s: %w", t.name, err)
	}
	sets, err := c.GetSets(tbl)
	if err != nil {
		return fmt.Errorf("list sets of table inet %s: %w", t.name, err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains of table inet %s: %w", t.name, err)
	}
	n := len(sets)
	for _, ch := range chains {
		if ch.Table.Name == t.name {
			n++
		}
	}
	if n == 0 {
		return nil // an empty table is free to take
	}
	return fmt.Errorf("table inet %s holds %d sets and chains but no set %q with comment %q: "+
		"choose another table name in the config or delete that table: %w",
		t.name, n, setGuarded, ownerComment, ErrNotOurs)
}

// checkMarked returns nil when t's table carries sesame's marker, ErrNoTable
// when there is no such table and ErrNotOurs otherwise (an empty table
// too: unlike Ensure, which may take an empty table over, Delete removes
// only what sesame made).
func (t *Table) checkMarked() error {
	w, err := dialWire(t.opts.netns)
	if err != nil {
		return err
	}
	defer w.Close()
	comment, err := w.setComment(t.name, setGuarded)
	switch {
	case err == nil && comment == ownerComment:
		return nil
	case err == nil:
		return fmt.Errorf("table inet %s: its set %q has comment %q, not %q: %w", t.name, setGuarded, comment, ownerComment, ErrNotOurs)
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("inspect table inet %s: %w", t.name, err)
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	tbl, err := c.ListTableOfFamily(t.name, nftables.TableFamilyINet)
	switch {
	case errors.Is(err, unix.ENOENT) || (err == nil && tbl == nil):
		return fmt.Errorf("table inet %s: %w", t.name, ErrNoTable)
	case err != nil:
		return fmt.Errorf("list table inet %s: %w", t.name, err)
	}
	return fmt.Errorf("table inet %s has no set %q with comment %q: %w", t.name, setGuarded, ownerComment, ErrNotOurs)
}

// Grant opens ports for src for ttl (one element per port, its comment the
// door); a grant that is still live restarts its timer.
func (t *Table) Grant(src netip.Addr, door string, ports []policy.PortProto, ttl time.Duration) error {
	return t.Apply([]Grant{{Src: src, Door: door, Ports: ports, TTL: ttl}}, nil)
}

// Revoke closes ports for src; ports that have no grant are ignored.
func (t *Table) Revoke(src netip.Addr, ports []policy.PortProto) error {
	return t.Apply(nil, []Revoke{{Src: src, Ports: ports}})
}

// Delete removes the whole table, grants included. It removes only a table
// that carries sesame's marker (the comment ownerComment on its guarded
// set): ErrNotOurs for any other, ErrNoTable when there is none.
func (t *Table) Delete() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkMarked(); err != nil {
		return err
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	c.DelTable(t.nfTable())
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete table inet %s: %w", t.name, ErrNoTable)
		}
		return fmt.Errorf("delete table inet %s: %w", t.name, err)
	}
	return nil
}

// List returns the grants in both grant sets, IPv4 first.
func (t *Table) List() ([]Element, error) {
	c, err := t.conn()
	if err != nil {
		return nil, err
	}
	// GetSetElements hides the errno, so look for the table first.
	if _, err := c.ListTableOfFamily(t.name, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("list grants of table inet %s: %w", t.name, ErrNoTable)
		}
		return nil, fmt.Errorf("list table inet %s: %w", t.name, err)
	}
	var out []Element
	for _, name := range []string{setGrants4, setGrants6} {
		elems, err := c.GetSetElements(&nftables.Set{Table: t.nfTable(), Name: name})
		if err != nil {
			return nil, fmt.Errorf("list set %s of table inet %s: %w", name, t.name, err)
		}
		for _, e := range elems {
			a, pp, err := parseKey(e.Key)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", name, err)
			}
			out = append(out, Element{Addr: a, Port: pp, Door: e.Comment, Timeout: e.Timeout, Expires: e.Expires})
		}
	}
	return out, nil
}

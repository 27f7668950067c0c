// Package nft owns sesame's nftables table (family inet): it builds the
// table, sets and input chain from a policy in one transaction, and writes
// grants as set elements that the kernel expires by itself. The layout is
// in docs/design.md ("nftables layout"); Ruleset renders the same model as text.
package nft

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	log       *slog.Logger
	now       func() time.Time
	noDestroy bool // tests: behave as on a kernel without DESTROYSETELEM
	noQuery   bool // tests: skip the fallback's existence queries
	setsOnly  bool // Delete removes only sesame's sets (table_mode = "sets")
}

// WithNetNS makes the table live in the network namespace that fd refers to
// (tests use throwaway namespaces).
func WithNetNS(fd int) Option { return func(o *options) { o.netns = fd } }

// WithLogger logs what Ensure and Apply do on their own: grants moved
// between sets, a pending set flushed.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Table is sesame's nftables table. Its methods are safe for concurrent use.
type Table struct {
	name string
	opts options
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex // serializes kernel writes and guards the fields below
	w       *wire      // lasting conn for Apply; nil until needed or after an error
	destroy bool       // the kernel knows NFT_MSG_DESTROYSETELEM
	probed  bool
	inst    *installed          // what the last Ensure installed, for Verify
	sets    map[string]*setInfo // the table's grant sets; nil until Ensure or the first Apply

	evicted atomic.Uint64 // pending elements deleted to make room
	flushed atomic.Uint64 // pending sets flushed because they were full
}

// setInfo is what Apply knows of one grant set.
type setInfo struct {
	size int
	kind Kind
	fifo *fifo // pending sets: what sesame put there
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
	t.log = t.opts.log
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.now = t.opts.now
	if t.now == nil {
		t.now = time.Now
	}
	return t, nil
}

// PendingEvicted returns how many pending grants Apply deleted to make
// room for newer ones, and how many times it flushed a full pending set.
func (t *Table) PendingEvicted() (evicted, flushes uint64) {
	return t.evicted.Load(), t.flushed.Load()
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

// checkOwner returns ErrNotOurs when a table of t's name exists, holds
// something, and lacks sesame's marker: the comment ownerComment on its
// guarded set.
func (t *Table) checkOwner() error {
	comment, _, err := t.guardedComment()
	switch {
	case err != nil:
		return err
	case comment == ownerComment:
		return nil
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	tbl, err := t.lookupTable(c)
	if errors.Is(err, ErrNoTable) {
		return nil // no table yet
	}
	if err != nil {
		return err
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
	comment, found, err := t.guardedComment()
	switch {
	case err != nil:
		return err
	case comment == ownerComment:
		return nil
	case found:
		return fmt.Errorf("table inet %s: its set %q has comment %q, not %q: %w", t.name, setGuarded, comment, ownerComment, ErrNotOurs)
	}
	c, err := t.conn()
	if err != nil {
		return err
	}
	if _, err := t.lookupTable(c); err != nil {
		return err // ErrNoTable among others
	}
	return fmt.Errorf("table inet %s has no set %q with comment %q: %w", t.name, setGuarded, ownerComment, ErrNotOurs)
}

// Grant opens ports of door for src for ttl in the door's set of kind k
// (one element per port, its comment the door); a grant that is still live
// restarts its timer.
func (t *Table) Grant(src netip.Addr, door string, k Kind, ports []policy.PortProto, ttl time.Duration) error {
	return GrantErr(t.Apply([]Grant{{Src: src, Door: door, Kind: k, Ports: ports, TTL: ttl}}, nil), 0)
}

// Revoke closes ports of door for src: its open and pending grants, and
// with manual its manual grants too. Ports that have no grant are ignored.
func (t *Table) Revoke(src netip.Addr, door string, ports []policy.PortProto, manual bool) error {
	return RevokeErr(t.Apply(nil, []Revoke{{Src: src, Door: door, Ports: ports, Manual: manual}}), 0)
}

// Delete removes the whole table, grants included. It removes only a table
// that carries sesame's marker (the comment ownerComment on its guarded
// set): ErrNotOurs for any other, ErrNoTable when there is none.
func (t *Table) Delete() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.opts.setsOnly {
		return t.deleteSets()
	}
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

// List returns the grants of every door set, by set name (IPv4 before
// IPv6 for a door and kind), then in the kernel's order. Grants left in the
// sets of an older layout (grants4, grants6) are listed as open grants of
// the door in their comment.
func (t *Table) List() ([]Element, error) {
	c, err := t.conn()
	if err != nil {
		return nil, err
	}
	sets, err := t.kernelSets(c)
	if err != nil {
		return nil, err
	}
	var out []Element
	for _, s := range sets {
		k, _, door, ok := parseSetName(s.Name)
		legacy := s.Name == legacyGrants4 || s.Name == legacyGrants6
		if !ok && !legacy {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list set %s of table inet %s: %w", s.Name, t.name, err)
		}
		for _, e := range elems {
			a, pp, err := parseKey(e.Key)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", s.Name, err)
			}
			el := Element{Addr: a, Port: pp, Door: door, Kind: k, Timeout: e.Timeout, Expires: e.Expires, Comment: e.Comment}
			if legacy {
				el.Door, el.Kind = e.Comment, Open
			}
			out = append(out, el)
		}
	}
	return out, nil
}

// kernelSets returns the sets of the table, sorted by name, or ErrNoTable.
func (t *Table) kernelSets(c *nftables.Conn) ([]*nftables.Set, error) {
	// GetSets hides the errno, so look for the table first.
	if _, err := t.lookupTable(c); err != nil {
		return nil, err
	}
	sets, err := c.GetSets(t.nfTable())
	if err != nil {
		return nil, fmt.Errorf("list sets of table inet %s: %w", t.name, err)
	}
	slices.SortFunc(sets, func(a, b *nftables.Set) int { return strings.Compare(a.Name, b.Name) })
	return sets, nil
}

// loadSets learns the table's grant sets from the kernel, for a Table that
// did not run Ensure (sesame grant and revoke).
func (t *Table) loadSets() error {
	c, err := t.conn()
	if err != nil {
		return err
	}
	sets, err := t.kernelSets(c)
	if err != nil {
		return err
	}
	t.sets = map[string]*setInfo{}
	for _, s := range sets {
		if k, _, _, ok := parseSetName(s.Name); ok {
			t.sets[s.Name] = newSetInfo(k, int(s.Size))
		}
	}
	return nil
}

func newSetInfo(k Kind, size int) *setInfo {
	si := &setInfo{size: size, kind: k}
	if si.size == 0 {
		si.size = policy.DefaultMaxGrants
	}
	if k.pending() {
		si.fifo = newFIFO()
	}
	return si
}

// hasSet reports whether the table has the grant set name.
func (t *Table) hasSet(name string) bool { return t.sets[name] != nil }

// guardedComment returns the comment of the table's guarded set; found is
// false when there is no such set (or no table).
func (t *Table) guardedComment() (comment string, found bool, err error) {
	w, err := dialWire(t.opts.netns)
	if err != nil {
		return "", false, err
	}
	defer w.Close()
	comment, err = w.setComment(t.name, setGuarded)
	switch {
	case err == nil:
		return comment, true, nil
	case errors.Is(err, unix.ENOENT):
		return "", false, nil
	}
	return "", false, fmt.Errorf("inspect table inet %s: %w", t.name, err)
}

// lookupTable returns the table as the kernel has it, or an error that
// wraps ErrNoTable when there is none.
func (t *Table) lookupTable(c *nftables.Conn) (*nftables.Table, error) {
	tbl, err := c.ListTableOfFamily(t.name, nftables.TableFamilyINet)
	switch {
	case errors.Is(err, unix.ENOENT) || (err == nil && tbl == nil):
		return nil, fmt.Errorf("table inet %s: %w", t.name, ErrNoTable)
	case err != nil:
		return nil, fmt.Errorf("list table inet %s: %w", t.name, err)
	}
	return tbl, nil
}

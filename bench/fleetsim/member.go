package fleetsim

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/policy"
)

// The simulated fleet: one door, one port, every member in one group per
// phase, may_grant covering it.
const (
	fleetName = "sim"
	doorName  = "ssh"
	maxSkew   = 2 * time.Second
	// doorOpenFor is every receiver's open_for: the longest record.
	doorOpenFor = 10 * time.Minute
	// As the daemon's receiver (daemon/fleetrun.go).
	seenCap = 65536
	rate    = 10
	burst   = 100
)

var ports = []policy.PortProto{{Port: 22, Proto: policy.TCP}}

// grant is one published record, tracked from its publish to its last
// member's apply.
type grant struct {
	idx       int32
	published time.Time
	restart   bool         // one of the restart test's records
	applied   atomic.Int32 // by checking members
	last      atomic.Int64 // unix ns of the latest apply
	delivered atomic.Int32 // to any member, by its link
	lastDeliv atomic.Int64 // unix ns of the latest delivery
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		o := a.Load()
		if v <= o || a.CompareAndSwap(o, v) {
			return
		}
	}
}

// tracker maps record ids to their grants; the publisher registers a
// grant before it publishes it.
type tracker struct {
	mu     sync.RWMutex
	byID   map[string]*grant
	all    []*grant
	counts stats
}

// stats are counters every member adds to.
type stats struct {
	applied    atomic.Int64
	violations atomic.Int64 // applied_at + timeout > not_after + max_skew
	overshoot  atomic.Int64 // max of applied_at + timeout - not_after, ns
	gap        atomic.Int64 // max from the receiver's clock reading to the apply, ns
	refused    [32]atomic.Int64
	unknown    atomic.Int64 // applied records the tracker did not know
}

func newTracker() *tracker { return &tracker{byID: map[string]*grant{}} }

func (t *tracker) add(id string, g *grant) {
	t.mu.Lock()
	g.idx = int32(len(t.all))
	t.byID[id] = g
	t.all = append(t.all, g)
	t.mu.Unlock()
}

func (t *tracker) get(id string) *grant {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byID[id]
}

// appliedGrant is what the fake set records of one grant: when it was
// applied and its kernel timeout.
type appliedGrant struct {
	at      int64 // unix ns
	timeout time.Duration
}

// member is one simulated host: the real fleet link (its own connection),
// its own key, and, for a checking member, a fleet.Receiver as the daemon
// configures it and a fake set that records what it applied instead of
// writing nftables. A member without a receiver (recv nil) only carries:
// it records what its link delivered, so that many members load the
// servers without each spending an Ed25519 verification per record on the
// benchmark's few cores.
type member struct {
	name   string
	origin fleet.Origin
	link   *natslink.Link
	recv   *fleet.Receiver // nil: a carrier; used by the link's deliver goroutine only
	// checking is false while a member with a receiver only carries (a
	// cell with fewer checkers than its phase).
	checking atomic.Bool
	t        *tracker
	expire   time.Time
	got      map[int32]struct{} // grants delivered; the deliver goroutine's

	mu      sync.Mutex
	set     map[int32]appliedGrant
	holding int   // restart records held (applied, or delivered to a carrier)
	fullAt  int64 // unix ns when holding reached want, 0 before
	want    int
}

// newMember returns a member for org; recv nil makes it a carrier.
func newMember(org fleet.Origin, t *tracker, recv *fleet.Receiver) *member {
	m := &member{name: org.Member, origin: org, t: t, recv: recv, set: map[int32]appliedGrant{}, got: map[int32]struct{}{}}
	m.checking.Store(recv != nil)
	return m
}

func (m *member) deliver(r natslink.Record) {
	now := time.Now()
	if g := m.t.get(r.ID); g != nil {
		if _, dup := m.got[g.idx]; !dup {
			m.got[g.idx] = struct{}{}
			g.delivered.Add(1)
			storeMax(&g.lastDeliv, now.UnixNano())
			if !m.checking.Load() && g.restart {
				m.mu.Lock()
				m.hold(now)
				m.mu.Unlock()
			}
		}
	}
	if !m.checking.Load() {
		return
	}
	if now.Sub(m.expire) > time.Second {
		m.recv.Expire(now)
		m.expire = now
		m.prune(now)
	}
	// As the daemon: decide, write the element with the decision's
	// timeout, then remember the record.
	a := m.recv.Receive(r.Data, r.From, now)
	if !a.Applies() {
		m.t.counts.refused[a.Reason%32].Add(1)
		return
	}
	defer m.recv.Landed(a)
	if a.Kind != fleet.KindOpen {
		return
	}
	g := m.t.get(a.ID)
	at := time.Now()
	c := &m.t.counts
	c.applied.Add(1)
	// The fake set's element expires at at+Timeout: never past
	// not_after + max_skew.
	over := at.Add(a.Timeout).Sub(a.NotAfter)
	if over > maxSkew {
		c.violations.Add(1)
	}
	storeMax(&c.overshoot, int64(over))
	storeMax(&c.gap, int64(at.Sub(now)))
	if g == nil {
		c.unknown.Add(1)
		return
	}
	m.mu.Lock()
	if _, dup := m.set[g.idx]; !dup && g.restart {
		m.hold(at)
	}
	m.set[g.idx] = appliedGrant{at: at.UnixNano(), timeout: a.Timeout}
	m.mu.Unlock()
	g.applied.Add(1)
	storeMax(&g.last, at.UnixNano())
}

// hold counts one more restart record held at at; m.mu is held.
func (m *member) hold(at time.Time) {
	m.holding++
	if m.holding == m.want && m.fullAt == 0 {
		m.fullAt = at.UnixNano()
	}
}

// prune forgets the fake set's expired elements, as the kernel does.
func (m *member) prune(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.set {
		if now.UnixNano() >= e.at+int64(e.timeout) {
			delete(m.set, k)
		}
	}
}

// restartState returns how many restart records the member holds and
// when it first held all of them.
func (m *member) restartState() (holding int, fullAt int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holding, m.fullAt
}

// phaseMembers makes n members with fresh keys, all of them may_grant
// doorName in group, and the members file that says so.
func phaseMembers(n int, group string) ([]fleet.Origin, *fleet.Members, error) {
	var b strings.Builder
	origins := make([]fleet.Origin, n)
	for i := range n {
		priv, err := fleet.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		name := fmt.Sprintf("m%04d", i)
		origins[i] = fleet.Origin{Fleet: fleetName, Member: name, Key: priv}
		fmt.Fprintf(&b, "member %q {\n  key = %q\n  may_grant = { %s = [%q] }\n}\n", name, fleet.FormatKey(priv.Public().(ed25519.PublicKey)), group, doorName)
	}
	ms, diags := fleet.ParseMembers("members.hcl", []byte(b.String()))
	if diags.HasErrors() {
		return nil, nil, diags
	}
	return origins, ms, nil
}

// srcAddr returns the i-th simulated client address, in 2001:db8::/32.
func srcAddr(i uint32) netip.Addr {
	a := [16]byte{0x20, 0x01, 0x0d, 0xb8}
	a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(a)
}

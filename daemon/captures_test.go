package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// fakeConn is a capture socket: a flooded one returns full batches of
// hits to 127.0.0.1 as fast as they are read; another blocks until
// closed. SetPolicy builds the real filter, so it reads the policy as
// capture.Conn does.
type fakeConn struct {
	flood  bool
	reads  atomic.Int64
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	pols     []*policy.Policy
	failSet  bool
	failFrom int // > 0: SetPolicy fails once it has taken this many
}

func newFakeConn(flood bool) *fakeConn { return &fakeConn{flood: flood, closed: make(chan struct{})} }

func (f *fakeConn) ReadHits(hs []knock.Hit) (int, error) {
	f.reads.Add(1)
	if !f.flood {
		<-f.closed
	}
	select {
	case <-f.closed:
		return 0, capture.ErrClosed
	default:
	}
	for i := range hs {
		hs[i] = knock.Hit{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("127.0.0.1"), Proto: policy.TCP, Port: 1, Flags: policy.FlagSYN}
	}
	return len(hs), nil
}

func (f *fakeConn) SetPolicy(p *policy.Policy) error {
	if _, err := capture.Filter(p); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet || f.failFrom > 0 && len(f.pols) >= f.failFrom {
		return errors.New("injected SetPolicy failure")
	}
	f.pols = append(f.pols, p)
	return nil
}

func (f *fakeConn) policies() []*policy.Policy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*policy.Policy(nil), f.pols...)
}

func (f *fakeConn) Stats() (capture.Stats, error) { return capture.Stats{}, nil }

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeConn) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// fakeNet is the interfaces and sockets captures sees.
type fakeNet struct {
	mu       sync.Mutex
	index    map[string]int // the interfaces that exist, by name
	conns    map[string][]*fakeConn
	spaConns map[string][]*fakeConn
	flood    bool
	failOpen map[string]bool
}

func (n *fakeNet) lookup(name string) (*net.Interface, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok := n.index[name]
	if !ok {
		return nil, fmt.Errorf("no interface %q", name)
	}
	return &net.Interface{Index: i, Name: name, Flags: net.FlagUp}, nil
}

func (n *fakeNet) open(name string, p *policy.Policy, spa bool) (conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failOpen[name] {
		return nil, fmt.Errorf("open %q: injected failure", name)
	}
	c := newFakeConn(n.flood && !spa)
	if err := c.SetPolicy(p); err != nil {
		return nil, err
	}
	if spa {
		n.spaConns[name] = append(n.spaConns[name], c)
	} else {
		n.conns[name] = append(n.conns[name], c)
	}
	return c, nil
}

// last returns the latest knock socket opened on name.
func (n *fakeNet) last(name string) *fakeConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.conns[name]
	return cs[len(cs)-1]
}

func testCaptures(t *testing.T, hits chan *hitBatch, n *fakeNet) *captures {
	t.Helper()
	local, err := capture.NewLocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	met := newMetrics("test", "test")
	c := newCaptures(slog.New(slog.DiscardHandler), local, hits, met, newSPAState(slog.New(slog.DiscardHandler), nil))
	c.lookup, c.openConn = n.lookup, n.open
	t.Cleanup(c.closeAll)
	return c
}

func newFakeNet(flood bool, names ...string) *fakeNet {
	n := &fakeNet{index: map[string]int{}, conns: map[string][]*fakeConn{}, spaConns: map[string][]*fakeConn{}, flood: flood, failOpen: map[string]bool{}}
	for i, name := range names {
		n.index[name] = i + 1
	}
	return n
}

// within fails the test if f does not return within 5 s (a deadlock).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still blocked after 5s", what)
	}
}

// TestSyncStopsBlockedReader: a reload (sync) runs on the goroutine that
// takes the hits, so the readers of a flooded interface are blocked
// handing it batches; removing that interface, or the healer re-binding
// it, must still return.
func TestSyncStopsBlockedReader(t *testing.T) {
	t.Parallel()
	n := newFakeNet(true, "a", "b")
	hits := make(chan *hitBatch, 1) // nobody reads: the loop is reloading
	c := testCaptures(t, hits, n)
	p := testPolicy(t, "7000", "8000/udp", "9000")
	if err := c.sync(context.Background(), []string{"a", "b"}, p); err != nil {
		t.Fatal(err)
	}
	for n.last("a").reads.Load() < 1 || n.last("b").reads.Load() < 1 {
		time.Sleep(time.Millisecond) // the readers fill the channel and block
	}
	within(t, "sync removing a flooded interface", func() {
		if err := c.sync(context.Background(), []string{"a"}, p); err != nil {
			t.Error(err)
		}
	})
	if !n.last("b").isClosed() {
		t.Error("b's socket still open")
	}
	// The healer: a's index changes (deleted and created again) while its
	// reader is blocked.
	n.mu.Lock()
	n.index["a"] = 10
	n.mu.Unlock()
	old := n.last("a")
	within(t, "rebind of a flooded interface", func() { c.rebind(context.Background()) })
	if !old.isClosed() || n.last("a") == old {
		t.Error("a not re-bound")
	}
	within(t, "closeAll", c.closeAll)
}

// TestSyncRollback: a reload that fails part way leaves every socket on
// the old policy's filter and the SPA state unchanged, and closes the
// sockets it opened; after a failed filter restore, the healer reopens
// the socket on the old policy.
func TestSyncRollback(t *testing.T) {
	t.Parallel()
	p1 := testPolicy(t, "7000", "8000/udp", "9000")
	p2 := testPolicy(t, "7100", "8100/udp", "9100")
	spaP, _ := spaPolicy(t, false)
	badSPA, _ := spaPolicy(t, false)
	badSPA.StateDir = "/dev/null/state" // update fails: no state_dir
	for _, tt := range []struct {
		name   string
		names  []string
		p      *policy.Policy
		inject func(n *fakeNet)
	}{
		{"open fails on a new interface", []string{"a", "b", "c"}, p2, func(n *fakeNet) { n.failOpen["c"] = true }},
		{"filter refused on the second", []string{"a", "b"}, p2, func(n *fakeNet) { n.last("b").failSet = true }},
		{"SPA state refused after new SPA sockets", []string{"a", "b", "c"}, badSPA, func(*fakeNet) {}},
		{"SPA socket open fails", []string{"a", "b"}, spaP, func(n *fakeNet) { n.failOpen["b"] = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNet(false, "a", "b", "c")
			c := testCaptures(t, make(chan *hitBatch, 64), n)
			if err := c.sync(context.Background(), []string{"a", "b"}, p1); err != nil {
				t.Fatal(err)
			}
			a, b := n.last("a"), n.last("b")
			before := c.pol
			tt.inject(n)
			if err := c.sync(context.Background(), tt.names, tt.p); err == nil {
				t.Fatal("sync succeeded, want the injected failure")
			}
			if c.pol != before {
				t.Error("the filters' policy changed")
			}
			for name, fc := range map[string]*fakeConn{"a": a, "b": b} {
				pols := fc.policies()
				if last := pols[len(pols)-1]; last != before || fc.isClosed() {
					t.Errorf("%s: closed %v, last filter from %v, want the old policy %v", name, fc.isClosed(), last, before)
				}
			}
			for name, cs := range n.spaConns {
				for _, fc := range cs {
					if !fc.isClosed() {
						t.Errorf("SPA socket opened on %s by the failed sync still open", name)
					}
				}
			}
			for _, fc := range n.conns["c"] {
				if !fc.isClosed() {
					t.Error("socket opened on c by the failed sync still open")
				}
			}
			if len(c.ifaces) != 2 || c.ifaces["a"].spa != nil || c.ifaces["b"].spa != nil {
				t.Errorf("interfaces after the failed sync: %v", c.ifaces)
			}
			if doors := *c.spa.doors.Load(); len(doors) != 0 {
				t.Errorf("SPA doors after the failed sync: %v", doors)
			}
		})
	}

	// The filter cannot even be put back on a: its socket is closed, and
	// the healer reopens it with the old policy.
	n := newFakeNet(false, "a", "b")
	c := testCaptures(t, make(chan *hitBatch, 64), n)
	if err := c.sync(context.Background(), []string{"a", "b"}, p1); err != nil {
		t.Fatal(err)
	}
	a, b := n.last("a"), n.last("b")
	a.failFrom, b.failSet = 2, true // a takes p2, then refuses p1 back
	if err := c.sync(context.Background(), []string{"a", "b"}, p2); err == nil {
		t.Fatal("sync succeeded")
	}
	if !a.isClosed() || c.ifaces["a"].knock != nil || b.isClosed() {
		t.Fatalf("a closed %v (want true), b closed %v (want false)", a.isClosed(), b.isClosed())
	}
	c.rebind(context.Background())
	if ra := n.last("a"); ra == a || ra.policies()[0] != c.pol || c.ifaces["a"].knock == nil {
		t.Error("a not reopened on the old policy by the healer")
	}
}

// TestRebindUsesSnapshot: the healer re-binds sockets with the filters'
// own copy of the policy while the loop advances one-time doors in the
// live one (run with -race: no race).
func TestRebindUsesSnapshot(t *testing.T) {
	t.Parallel()
	n := newFakeNet(false, "a")
	c := testCaptures(t, make(chan *hitBatch, 64), n)
	seq := func(base uint16) []policy.PortProto {
		return []policy.PortProto{{Port: base, Proto: policy.TCP}, {Port: base + 1, Proto: policy.UDP}}
	}
	door := policy.Door{Name: "ot", OneTimeFile: "/nonexistent", Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TCPFlags: policy.DefaultTCPFlags}
	for i := range 200 {
		door.OneTime = append(door.OneTime, policy.OneTimeSeq{Line: i + 1, Steps: seq(uint16(10000 + 2*i))})
	}
	door.Sequence = door.OneTime[0].Steps
	p := &policy.Policy{Doors: []policy.Door{door}}
	if err := c.sync(context.Background(), []string{"a"}, p); err != nil {
		t.Fatal(err)
	}
	l := newLoop(slog.New(slog.DiscardHandler), &fakeTable{}, p, knock.Config{})
	var wg sync.WaitGroup
	wg.Go(func() { // the loop: one-time doors advance in the live policy
		for range 150 {
			l.used = append(l.used, &p.Doors[0])
			l.advanceOneTime()
		}
	})
	wg.Go(func() { // the healer: the interface keeps being re-created
		for i := range 50 {
			n.mu.Lock()
			n.index["a"] = 100 + i
			n.mu.Unlock()
			c.rebind(context.Background())
		}
	})
	wg.Wait()
	if got := len(c.pol.Doors[0].OneTime); got != 200 {
		t.Errorf("the filters' policy has %d one-time sequences, want the 200 it was given", got)
	}
}

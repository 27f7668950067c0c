package fleettest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/policy"
)

// The test fleet is the documented example (docs/fleet/nats-server.conf):
// fleet prod, group web, members bastion-1 and web-1 ... web-4. In
// members.hcl every member may open ssh in web except web-4, which may
// grant only in group "other".
const (
	testFleet = DocsFleet
	testGroup = DocsGroup
	openFor   = 30 * time.Second
	maxSkew   = 2 * time.Second
)

var ssh = fleet.Door{Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, OpenFor: openFor}

// applied is one grant the recording fake applied.
type applied struct {
	Origin, ID, From string
	Timeout          time.Duration // the kernel timeout Decide gave
	At               time.Time     // the agent's clock when it applied
	NotAfter         time.Time
	CatchUp          bool
}

// refused is one record the fake refused.
type refused struct {
	Reason   fleet.Reason
	Origin   string
	From, ID string
}

// agent is one member: the real link, Decide/Seen/Limiter as the daemon
// uses them, and a recording fake of the grants it applies.
type agent struct {
	t    testing.TB
	name string
	priv ed25519.PrivateKey
	skew time.Duration // added to the real clock
	link *natslink.Link
	cfg  natslink.Config
	logs *syncBuffer

	mu      sync.Mutex
	recv    *fleet.Receiver // what the daemon decides with
	applied []applied
	refused []refused
	records []natslink.Record
	recvAt  []time.Time // when each record was delivered (real clock)
}

func (a *agent) now() time.Time { return time.Now().Add(a.skew) }

// deliver is the receiver: the daemon's fleet.Receiver (decode, Decide
// with the transport's From, the rate cap, the ids applied), and the
// fake's grant set.
func (a *agent) deliver(r natslink.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	a.recvAt = append(a.recvAt, time.Now())
	if r.From == a.name {
		return // its own record: applied locally already
	}
	now := a.now()
	d := a.recv.Receive(r.Data, r.From, now)
	if !d.Applies() {
		a.refused = append(a.refused, refused{Reason: d.Reason, Origin: d.Origin, From: r.From, ID: d.ID})
		return
	}
	a.recv.Landed(d)
	a.applied = append(a.applied, applied{Origin: d.Origin, ID: d.ID, From: r.From, Timeout: d.Timeout, At: now, NotAfter: d.NotAfter, CatchUp: r.CatchUp})
}

// knock signs an open of ssh for src by the agent, issued now on its
// clock, and publishes it; it returns the payload.
func (a *agent) knock(src string, d time.Duration) fleet.Payload {
	a.t.Helper()
	now := a.now()
	p := fleet.Payload{
		Fleet: testFleet, Group: testGroup, Origin: a.name, ID: fleet.NewID(),
		Kind: fleet.KindOpen, Door: "ssh", Src: src, Ports: []string{"22/tcp"},
		IssuedAt: now.UnixMilli(), NotAfter: now.Add(d).UnixMilli(),
	}
	a.publish(p, a.priv)
	return p
}

// publish signs p with key and publishes it through the agent's link.
func (a *agent) publish(p fleet.Payload, key ed25519.PrivateKey) []byte {
	a.t.Helper()
	env, err := fleet.Sign(key, p)
	if err != nil {
		a.t.Fatal(err)
	}
	if !a.link.Publish(testGroup, p.ID, env, time.UnixMilli(p.NotAfter)) {
		a.t.Fatalf("%s: Publish refused", a.name)
	}
	return env
}

func (a *agent) appliedID(id string) (applied, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range a.applied {
		if g.ID == id {
			return g, true
		}
	}
	return applied{}, false
}

func (a *agent) refusedID(id string) (refused, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.refused {
		if r.ID == id {
			return r, true
		}
	}
	return refused{}, false
}

func (a *agent) delivered(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.records {
		if r.ID == id {
			n++
		}
	}
	return n
}

func (a *agent) counts() (applied, refused, records int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applied), len(a.refused), len(a.records)
}

// testbed is a cluster, its members file and the agents.
type testbed struct {
	t       *testing.T
	ctx     context.Context
	c       *Cluster
	keys    map[string]ed25519.PrivateKey
	members *fleet.Members
	agents  map[string]*agent
}

// newTestbed starts the cluster with the documented authorization and
// makes the members' keys; bucket says whether the admin creates the
// group's bucket first. It does not start agents.
func newTestbed(t *testing.T, timeout time.Duration, bucket bool, opts ...ClusterOption) *testbed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	auth, err := DocsAuth()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(t.TempDir(), auth, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tb := &testbed{t: t, ctx: ctx, c: c, keys: map[string]ed25519.PrivateKey{}, agents: map[string]*agent{}}
	var src strings.Builder
	for _, m := range DocsMembers {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		tb.keys[m] = priv
		grant := `{ web = ["ssh"] }`
		if m == "web-4" {
			grant = `{ other = ["ssh"] }`
		}
		fmt.Fprintf(&src, "member %q {\n  key = %q\n  may_grant = %s\n}\n", m, fleet.FormatKey(pub), grant)
	}
	ms, diags := fleet.ParseMembers("members.hcl", []byte(src.String()))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	tb.members = ms
	if bucket {
		tb.createBucket()
	}
	return tb
}

// admin connects as the admin user (closed when the test ends) and
// returns the connection and its JetStream.
func (tb *testbed) admin() (*nats.Conn, jetstream.JetStream) {
	tb.t.Helper()
	nc, err := tb.c.Connect("admin")
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.t.Fatal(err)
	}
	return nc, js
}

// adminKV returns the group's bucket as the admin sees it.
func (tb *testbed) adminKV() jetstream.KeyValue {
	tb.t.Helper()
	_, js := tb.admin()
	kv, err := js.KeyValue(tb.ctx, natslink.Bucket(testFleet, testGroup))
	if err != nil {
		tb.t.Fatal(err)
	}
	return kv
}

// createBucket creates the group's bucket as the admin, with the link's
// configuration, once JetStream has a meta leader.
func (tb *testbed) createBucket() {
	tb.t.Helper()
	_, js := tb.admin()
	tb.eventually("the admin creates the bucket", func() bool {
		ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, natslink.StreamConfig(testFleet, testGroup, 3))
		return err == nil
	})
}

// start opens an agent's link to urls (all nodes if none) with clock skew.
func (tb *testbed) start(name string, skew time.Duration, urls ...string) *agent {
	tb.t.Helper()
	if len(urls) == 0 {
		urls = tb.c.URLs()
	}
	self := fleet.Self{Fleet: testFleet, Groups: []string{testGroup}, Doors: map[string]fleet.Door{"ssh": ssh}, MaxSkew: maxSkew}
	a := &agent{t: tb.t, name: name, priv: tb.keys[name], skew: skew, logs: &syncBuffer{},
		recv: fleet.NewReceiver(tb.members, self, 1<<16, 1000, 1000)}
	a.cfg = natslink.Config{
		Fleet: testFleet, Member: name, Receive: []string{testGroup}, Publish: []string{testGroup},
		Servers: urls, Creds: tb.c.Creds(name),
		Log: slogTo(a.logs),
		Now: a.now,
	}
	tb.open(a)
	tb.agents[name] = a
	return a
}

// open (re)opens a's link.
func (tb *testbed) open(a *agent) {
	tb.t.Helper()
	l, err := natslink.Open(a.cfg, a.deliver)
	if err != nil {
		tb.t.Fatal(err)
	}
	a.link = l
	tb.t.Cleanup(l.Close)
	if testing.Verbose() {
		tb.t.Cleanup(func() {
			if tb.t.Failed() {
				tb.t.Logf("%s's log:\n%s", a.name, a.logs.String())
			}
		})
	}
}

// startAll starts an agent for every member and waits for each to have
// caught up once.
func (tb *testbed) startAll() {
	tb.t.Helper()
	for _, m := range DocsMembers {
		tb.start(m, 0)
	}
	tb.waitCaughtUp(0, DocsMembers...)
}

// waitCaughtUp waits until each named agent has more than n catch-ups.
func (tb *testbed) waitCaughtUp(n int, names ...string) {
	tb.t.Helper()
	for _, m := range names {
		a := tb.agents[m]
		tb.eventually(m+" caught up", func() bool { return a.link.Status().CatchUps > n })
	}
}

// eventually polls cond until it holds or the test's deadline passes.
func (tb *testbed) eventually(what string, cond func() bool) {
	tb.t.Helper()
	for !cond() {
		select {
		case <-tb.ctx.Done():
			tb.t.Fatalf("timed out waiting: %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// holds checks that cond stays true for d (what is not to happen: a
// bounded wait is the only way to see it does not).
func (tb *testbed) holds(what string, d time.Duration, cond func() bool) {
	tb.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			tb.t.Fatalf("%s: no longer holds", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// others returns every agent but name.
func (tb *testbed) others(name string) []*agent {
	var out []*agent
	for _, m := range DocsMembers {
		if a := tb.agents[m]; a != nil && m != name {
			out = append(out, a)
		}
	}
	return out
}

func slogTo(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func nkeysCreateUser() (nkeys.KeyPair, error) { return nkeys.CreateUser() }

// syncBuffer is a bytes.Buffer safe for the link's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package fleettest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/logevent"
)

// TestBucketCreation: a member whose credentials may not create the
// missing bucket says so (naming the bucket and the permission) and
// retries; a link with the admin's credentials creates it (3 replicas,
// per-key TTL, RePublish); the member then binds, and the record it
// queued meanwhile lands.
func TestBucketCreation(t *testing.T) {
	tb := newTestbed(t, 90*time.Second, false)
	b := tb.start("bastion-1", 0)
	p := b.knock("198.51.100.20", openFor)
	tb.eventually("bastion-1 reports it may not create the bucket", func() bool {
		return strings.Contains(b.logs.String(), "create missing bucket")
	})
	logs := b.logs.String()
	for _, want := range []string{"sesame_prod_web", "$JS.API.STREAM.CREATE.KV_sesame_prod_web", logevent.FleetDenied} {
		if !strings.Contains(logs, want) {
			t.Errorf("bastion-1's log lacks %q:\n%s", want, logs)
		}
	}
	if st := b.link.Status(); st.Published != 0 || st.CatchUps != 0 {
		t.Errorf("status %+v before the bucket exists: want nothing published or caught up", st)
	}
	adminLog := &syncBuffer{}
	admin, err := natslink.Open(natslink.Config{
		Fleet: testFleet, Member: "admin", Publish: []string{testGroup}, Servers: tb.c.URLs(), Creds: tb.c.Creds("admin"),
		Log: slogTo(adminLog),
	}, func(natslink.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	tb.eventually("the admin creates the bucket", func() bool { return strings.Contains(adminLog.String(), logevent.FleetBucketCreated) })
	_, js := tb.admin()
	s, err := js.Stream(tb.ctx, natslink.Stream(testFleet, testGroup))
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Replicas != 3 || !c.AllowMsgTTL || c.AllowRollup || c.MaxBytes != natslink.BucketMaxBytes || c.MaxMsgsPerSubject != 1 || c.MaxMsgSize != natslink.MaxValueSize ||
		c.MaxAge != natslink.BucketMaxAge || c.Storage != jetstream.FileStorage || c.RePublish == nil ||
		c.RePublish.Destination != "sesame.prod.web.>" {
		t.Errorf("bucket created as %+v", c)
	}
	tb.eventually("bastion-1 publishes its queued record", func() bool { return b.link.Status().Published == 1 })
	w := tb.start("web-1", 0)
	checkApplied(tb, []*agent{w}, p.ID, time.UnixMilli(p.NotAfter), 0)
}

// TestMalformed: messages on the group's subjects, or keys in its bucket,
// that name no valid member and id are dropped and counted, never
// delivered, live or in a catch-up.
func TestMalformed(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.start("web-1", 0)
	tb.waitCaughtUp(0, "web-1")
	nc, js := tb.admin()
	prefix := natslink.SubjectPrefix(testFleet, testGroup)
	for _, subj := range []string{prefix + "bastion-1.nothex", prefix + "x", prefix + "a.b.c", prefix + "-x." + fleet.NewID()} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := js.KeyValue(tb.ctx, natslink.Bucket(testFleet, testGroup))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(tb.ctx, "bastion-1.zz", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	w := tb.agents["web-1"]
	tb.eventually("web-1 counts 5 malformed", func() bool { return w.link.Status().Malformed >= 5 })
	w2 := tb.start("web-2", 0)
	tb.waitCaughtUp(0, "web-2")
	tb.eventually("web-2 counts the malformed key", func() bool { return w2.link.Status().Malformed >= 1 })
	for _, a := range []*agent{w, w2} {
		if _, _, n := a.counts(); n != 0 {
			t.Errorf("%s: %d records delivered, want none", a.name, n)
		}
	}
}

// TestDocsTemplate: the permissions Authorization generates (for fleets
// other than the example, e.g. the benchmark's) are exactly those of
// docs/fleet/nats-server.conf for the example's fleet.
func TestDocsTemplate(t *testing.T) {
	docs, err := DocsAuth()
	if err != nil {
		t.Fatal(err)
	}
	gen := Authorization(DocsFleet, []string{DocsGroup}, DocsMembers)
	if !slices.Equal(docs.Users, gen.Users) {
		t.Fatalf("users: docs %v, generated %v", docs.Users, gen.Users)
	}
	perms := func(a Auth) map[string]*server.Permissions {
		var vars strings.Builder
		for i, u := range a.Users {
			fmt.Fprintf(&vars, "%s: %q\n", NkeyVar(u), testNkeys[i])
		}
		f := filepath.Join(t.TempDir(), "n.conf")
		if err := os.WriteFile(f, []byte("listen: 127.0.0.1:-1\n"+vars.String()+a.Block), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*server.Permissions{}
		for _, u := range o.Nkeys {
			out[u.Nkey] = u.Permissions
		}
		return out
	}
	d, g := perms(docs), perms(gen)
	if len(d) != len(docs.Users) {
		t.Fatalf("docs: %d users with an nkey, want %d", len(d), len(docs.Users))
	}
	for i, u := range docs.Users {
		k := testNkeys[i]
		if !reflect.DeepEqual(d[k], g[k]) {
			t.Errorf("%s: docs %+v %+v, generated %+v %+v", u, d[k].Publish, d[k].Subscribe, g[k].Publish, g[k].Subscribe)
		}
	}
}

// testNkeys are valid public user nkeys (no seeds kept) for parsing only.
var testNkeys = func() []string {
	var out []string
	for range 6 {
		kp, err := nkeysCreateUser()
		if err != nil {
			panic(err)
		}
		pub, _ := kp.PublicKey()
		out = append(out, pub)
	}
	return out
}()

// TestMeasure measures (does not assert) the link on the in-process
// cluster: the publish ack, publish-to-deliver latency with 5 members,
// and a catch-up of 1,000 live records. go test -v -run TestMeasure.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	tb := newTestbed(t, 3*time.Minute, true)
	tb.startAll()
	b := tb.agents["bastion-1"]
	const n = 200
	var acks []time.Duration
	sent := map[string]time.Time{}
	for i := range n {
		at := time.Now()
		p := b.knock(fmt.Sprintf("198.51.100.%d", 1+i%250), openFor)
		sent[p.ID] = at
		tb.eventually("ack", func() bool { return b.link.Status().Published == uint64(i+1) })
		acks = append(acks, b.link.Status().PublishAck)
	}
	var lat []time.Duration
	for _, a := range tb.others("bastion-1") {
		tb.eventually(a.name+" gets all", func() bool { _, _, r := a.counts(); return r >= n })
		a.mu.Lock()
		for i, r := range a.records {
			if at, ok := sent[r.ID]; ok {
				lat = append(lat, a.recvAt[i].Sub(at))
			}
		}
		a.mu.Unlock()
	}
	t.Logf("publish ack over %d records: p50 %v p99 %v", n, pct(acks, 50), pct(acks, 99))
	t.Logf("publish-to-deliver, %d records x %d members: p50 %v p99 %v", n, len(tb.others("bastion-1")), pct(lat, 50), pct(lat, 99))

	// 1,000 live records, then a member that comes back catches up.
	away := tb.agents["web-4"]
	away.link.Close()
	const m = 1000
	for i := range m {
		b.knock(fmt.Sprintf("203.0.113.%d", 1+i%250), openFor)
	}
	tb.eventually("1000 more published", func() bool { return b.link.Status().Published == n+m })
	away.mu.Lock()
	away.records, away.recvAt = nil, nil
	away.mu.Unlock()
	start := time.Now()
	tb.open(away)
	tb.eventually("catch-up", func() bool { return away.link.Status().CatchUps >= 1 })
	took := time.Since(start)
	_, _, got := away.counts()
	line := ""
	for l := range strings.Lines(away.logs.String()) {
		if strings.Contains(l, logevent.FleetCatchUp) {
			line = strings.TrimSpace(l)
		}
	}
	t.Logf("catch-up of %d live records (%d delivered): %v from Open; the link says: %s", n+m, got, took.Round(time.Millisecond), line)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// TestGroupsIndependent: with the generated permissions for two groups, a
// member whose "db" bucket is missing (and that may not create it) still
// publishes its "web" records at once: each group has its own queue.
func TestGroupsIndependent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	auth := Authorization("f2", []string{"web", "db"}, []string{"m1", "m2"})
	c, err := NewCluster(t.TempDir(), auth)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nc, err := c.Connect("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := js.CreateStream(cctx, natslink.StreamConfig("f2", "web", 3))
		ccancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create the web bucket: %v", err)
		}
	}
	got := make(chan natslink.Record, 16)
	recv, err := natslink.Open(natslink.Config{Fleet: "f2", Member: "m2", Receive: []string{"web"}, Servers: c.URLs(), Creds: c.Creds("m2")},
		func(r natslink.Record) { got <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	logs := &syncBuffer{}
	pub, err := natslink.Open(natslink.Config{Fleet: "f2", Member: "m1", Publish: []string{"db", "web"}, Servers: c.URLs(), Creds: c.Creds("m1"), Log: slogTo(logs)},
		func(natslink.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for recv.Status().CatchUps == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("m2 did not catch up")
		case <-time.After(20 * time.Millisecond):
		}
	}
	notAfter := time.Now().Add(2 * time.Minute) // past the test's deadline
	dbID, webID := fleet.NewID(), fleet.NewID()
	if !pub.Publish("db", dbID, []byte("db record"), notAfter) || !pub.Publish("web", webID, []byte("web record"), notAfter) {
		t.Fatal("Publish refused")
	}
	select {
	case r := <-got:
		if r.Group != "web" || r.From != "m1" || r.ID != webID || string(r.Data) != "web record" || r.CatchUp {
			t.Errorf("got %+v", r)
		}
	case <-ctx.Done():
		t.Fatalf("the web record did not arrive while db's is held up; m1's log:\n%s", logs.String())
	}
	for pub.Status().Published != 1 || !strings.Contains(logs.String(), "create missing bucket sesame_f2_db") {
		select {
		case <-ctx.Done():
			t.Fatalf("m1: status %+v, want the web record published; log (want the db bucket's error):\n%s", pub.Status(), logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if st := pub.Status(); st.Published != 1 || st.PublishFailed != 0 {
		t.Errorf("m1: status %+v, want only the web record published, none failed", st)
	}
}

package fleettest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/logevent"
)

// checkApplied checks that every agent in as applied the record id with a
// kernel timeout of at most the time left until notAfter on its clock and
// more than min.
func checkApplied(tb *testbed, as []*agent, id string, notAfter time.Time, minTimeout time.Duration) {
	tb.t.Helper()
	for _, a := range as {
		tb.eventually(a.name+" applies "+id, func() bool { _, ok := a.appliedID(id); return ok })
		g, _ := a.appliedID(id)
		if left := notAfter.Sub(g.At); g.Timeout > left || g.Timeout <= minTimeout {
			tb.t.Errorf("%s applied %s with timeout %v; %v were left on its clock; want more than %v", a.name, id, g.Timeout, left, minTimeout)
		}
	}
}

// TestFanOut: one knock at bastion-1 is applied by every other member,
// for the time the record has left; the publisher's link counts the ack.
func TestFanOut(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	b := tb.agents["bastion-1"]
	p := b.knock("198.51.100.2", openFor)
	checkApplied(tb, tb.others("bastion-1"), p.ID, time.UnixMilli(p.NotAfter), openFor-5*time.Second)
	st := b.link.Status()
	if st.Published != 1 || st.PublishAck <= 0 || !st.Connected || st.Server == "" {
		t.Errorf("publisher status %+v: want 1 published with its ack latency, connected", st)
	}
	for _, a := range tb.others("bastion-1") {
		if n := a.delivered(p.ID); n != 1 {
			t.Errorf("%s: record delivered %d times, want 1", a.name, n)
		}
		if st := a.link.Status(); st.Delivered != 1 || st.LastRecord.IsZero() || st.LastLag <= 0 {
			t.Errorf("%s: status %+v: want 1 delivered, a last record and its lag", a.name, st)
		}
	}
	// The documented permissions are all a member needs.
	for _, a := range tb.agents {
		for _, bad := range []string{logevent.FleetDenied, logevent.FleetBucketError, "level=ERROR", "level=WARN"} {
			if strings.Contains(a.logs.String(), bad) {
				t.Errorf("%s logged %s:\n%s", a.name, bad, a.logs.String())
			}
		}
	}
}

// TestLeaderLoss: the server that leads the group's stream stops; the
// fleet keeps working (members on it reconnect, a new leader is elected)
// and, once it is back, too. Members that reconnect catch up, and a record
// they already had is not delivered twice (the catch-up resumes after it;
// TestResumeAfterRestart counts what it reads).
func TestLeaderLoss(t *testing.T) {
	tb := newTestbed(t, 90*time.Second, true)
	stream := natslink.Stream(testFleet, testGroup)
	var leader int
	tb.eventually("a stream leader", func() bool { leader = tb.c.StreamLeader(stream); return leader >= 0 })
	// web-1 knows only the leader's node (it learns the others from it).
	tb.start("web-1", 0, tb.c.URL(leader))
	for _, m := range DocsMembers[2:] {
		tb.start(m, 0)
	}
	tb.start("bastion-1", 0)
	tb.waitCaughtUp(0, DocsMembers...)
	b := tb.agents["bastion-1"]
	p0 := b.knock("198.51.100.2", openFor)
	checkApplied(tb, tb.others("bastion-1"), p0.ID, time.UnixMilli(p0.NotAfter), 0)
	var moved []*agent // connected to the node that stops
	for _, a := range tb.agents {
		if a.link.Status().Server == tb.c.URL(leader) {
			moved = append(moved, a)
		}
	}
	if len(moved) == 0 {
		t.Fatal("web-1 is not connected to the leader's node")
	}
	tb.c.Stop(leader)
	p := b.knock("198.51.100.3", openFor)
	checkApplied(tb, tb.others("bastion-1"), p.ID, time.UnixMilli(p.NotAfter), openFor-10*time.Second)
	tb.eventually("a new stream leader", func() bool { l := tb.c.StreamLeader(stream); return l >= 0 && l != leader })
	for _, a := range tb.agents {
		tb.eventually(a.name+" connected", func() bool { return a.link.Status().Connected })
		if st := a.link.Status(); st.Server == tb.c.URL(leader) {
			t.Errorf("%s says it is connected to the stopped node %s", a.name, st.Server)
		}
	}
	for _, a := range moved {
		tb.eventually(a.name+" caught up again", func() bool { return a.link.Status().CatchUps >= 2 })
	}
	for _, a := range tb.agents {
		if n := a.delivered(p0.ID); n != 1 {
			t.Errorf("%s: %s delivered %d times, want once", a.name, p0.ID, n)
		}
	}
	if err := tb.c.Start(leader); err != nil {
		t.Fatal(err)
	}
	p2 := tb.agents["web-2"].knock("198.51.100.4", openFor)
	checkApplied(tb, tb.others("web-2"), p2.ID, time.UnixMilli(p2.NotAfter), openFor-10*time.Second)
}

// TestMinorityDown: with 2 of 3 servers down the cluster has no quorum:
// a knock's record waits in the publisher's queue and nothing is applied;
// a record whose deadline passes meanwhile is given up (logged) and never
// applied; when the servers are back the waiting record lands everywhere,
// for the time it has left.
func TestMinorityDown(t *testing.T) {
	tb := newTestbed(t, 2*time.Minute, true)
	tb.startAll()
	tb.c.Stop(1)
	tb.c.Stop(2)
	b := tb.agents["bastion-1"]
	short := b.knock("198.51.100.5", 3*time.Second) // given up at not_after - 1 s
	long := b.knock("198.51.100.6", openFor)
	nothing := func() bool {
		for _, a := range tb.others("bastion-1") {
			if n, _, _ := a.counts(); n > 0 {
				return false
			}
		}
		return b.link.Status().Published == 0
	}
	tb.holds("nothing applied or acknowledged without quorum", 3*time.Second, nothing)
	tb.eventually("the short record given up", func() bool { return b.link.Status().PublishFailed == 1 })
	if !strings.Contains(b.logs.String(), logevent.FleetPublishFailed) || !strings.Contains(b.logs.String(), short.ID) {
		t.Errorf("no %s line for %s in:\n%s", logevent.FleetPublishFailed, short.ID, b.logs.String())
	}
	for _, i := range []int{1, 2} {
		if err := tb.c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	checkApplied(tb, tb.others("bastion-1"), long.ID, time.UnixMilli(long.NotAfter), 0)
	for _, a := range tb.others("bastion-1") {
		// A write the lone server accepted but could not commit may land
		// once the quorum is back, after its deadline: the receivers
		// refuse it then, and its TTL removes it.
		if _, ok := a.appliedID(short.ID); ok {
			t.Errorf("%s applied the given-up record %s", a.name, short.ID)
		}
		if r, ok := a.refusedID(short.ID); a.delivered(short.ID) > 0 && (!ok || r.Reason != fleet.ReasonExpired) {
			t.Errorf("%s got the given-up record %s late and refused it as %v, want expired", a.name, short.ID, r.Reason)
		}
		g, _ := a.appliedID(long.ID)
		if g.Timeout > openFor-3*time.Second {
			t.Errorf("%s applied %s for %v: more than what was left after 3 s down", a.name, long.ID, g.Timeout)
		}
	}
	if st := b.link.Status(); st.Published != 1 || st.PublishFailed != 1 {
		t.Errorf("publisher status %+v: want 1 published, 1 failed", st)
	}
}

// TestCatchUpExpiring: a member that is away while two records are
// written gets, when it reconnects, only the one still live (the other's
// key expired in the bucket), through the catch-up, with a kernel timeout
// of only the time it has left.
func TestCatchUpExpiring(t *testing.T) {
	tb := newTestbed(t, 90*time.Second, true)
	tb.startAll()
	away := tb.agents["web-3"]
	away.link.Close()
	b := tb.agents["bastion-1"]
	short := b.knock("198.51.100.7", 4*time.Second)
	long := b.knock("198.51.100.8", openFor)
	checkApplied(tb, []*agent{tb.agents["web-1"]}, short.ID, time.UnixMilli(short.NotAfter), 0)
	checkApplied(tb, []*agent{tb.agents["web-1"]}, long.ID, time.UnixMilli(long.NotAfter), 0)
	// Wait until the short record's key is gone from the bucket (its
	// per-key TTL), as the admin sees it.
	kv := tb.adminKV()
	tb.eventually("the short record expires in the bucket", func() bool {
		_, err := kv.Get(tb.ctx, natslink.Key("bastion-1", short.ID))
		return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
	})
	if _, err := kv.Get(tb.ctx, natslink.Key("bastion-1", long.ID)); err != nil {
		t.Fatalf("the live record is not in the bucket: %v", err)
	}
	tb.open(away)
	tb.eventually("web-3 caught up", func() bool { return away.link.Status().CatchUps >= 1 })
	tb.eventually("web-3 applies the live record", func() bool { _, ok := away.appliedID(long.ID); return ok })
	g, _ := away.appliedID(long.ID)
	if !g.CatchUp {
		t.Error("the live record did not come through the catch-up")
	}
	if left := time.UnixMilli(long.NotAfter).Sub(g.At); g.Timeout > left || g.Timeout >= openFor-time.Second {
		t.Errorf("web-3 applied the caught-up record for %v (%v left, open_for %v): want only the time left", g.Timeout, left, openFor)
	}
	if n := away.delivered(short.ID); n != 0 {
		t.Errorf("the expired record was delivered %d times to the member that came back", n)
	}
	if !strings.Contains(away.logs.String(), logevent.FleetCatchUp) {
		t.Errorf("no %s line in:\n%s", logevent.FleetCatchUp, away.logs.String())
	}
}

// TestForgedSignature: a record in bastion-1's name signed with another
// key is refused by every receiver.
func TestForgedSignature(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	b := tb.agents["bastion-1"]
	_, forger, _ := ed25519.GenerateKey(nil)
	p := b.knock("198.51.100.9", openFor) // a genuine one, to know delivery works
	f := p
	f.ID, f.Src = fleet.NewID(), "203.0.113.66"
	b.publish(f, forger)
	checkApplied(tb, tb.others("bastion-1"), p.ID, time.UnixMilli(p.NotAfter), 0)
	checkRefused(tb, tb.others("bastion-1"), f.ID, fleet.ReasonBadSignature)
}

// checkRefused checks that every agent in as refuses id for reason and
// never applies it.
func checkRefused(tb *testbed, as []*agent, id string, reason fleet.Reason) {
	tb.t.Helper()
	for _, a := range as {
		tb.eventually(a.name+" refuses "+id, func() bool { _, ok := a.refusedID(id); return ok })
		if r, _ := a.refusedID(id); r.Reason != reason {
			tb.t.Errorf("%s refused %s as %v, want %v", a.name, id, r.Reason, reason)
		}
		if _, ok := a.appliedID(id); ok {
			tb.t.Errorf("%s applied %s", a.name, id)
		}
	}
}

// TestWrongName: a member cannot write under another member's name (the
// server refuses the write and a direct publish to the republished
// subject); and a record that reaches the bucket under another member's
// key anyway (written here by the admin) is refused as signer-not-origin.
func TestWrongName(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	denied := make(chan error, 4)
	nc, err := tb.c.Connect("web-1", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(tb.ctx, natslink.Bucket(testFleet, testGroup))
	if err != nil {
		t.Fatal(err)
	}
	// A record genuinely signed by web-1, written under bastion-1's name.
	p := fleet.Payload{Fleet: testFleet, Group: testGroup, Origin: "web-1", ID: fleet.NewID(), Kind: fleet.KindOpen, Door: "ssh",
		Src: "203.0.113.7", Ports: []string{"22/tcp"}, IssuedAt: time.Now().UnixMilli(), NotAfter: time.Now().Add(openFor).UnixMilli()}
	env, err := fleet.Sign(tb.keys["web-1"], p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	if _, err := kv.Create(ctx, natslink.Key("bastion-1", p.ID), env); err == nil {
		t.Error("web-1 wrote under bastion-1's name")
	}
	if err := nc.Publish(natslink.SubjectPrefix(testFleet, testGroup)+natslink.Key("bastion-1", p.ID), env); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	for range 2 {
		select {
		case err := <-denied:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("async error %v, want a permissions violation", err)
			}
		case <-tb.ctx.Done():
			t.Fatal("the server did not refuse the writes")
		}
	}
	// It may write under its own name.
	if _, err := kv.Create(tb.ctx, natslink.Key("web-1", p.ID), env); err != nil {
		t.Fatalf("web-1 under its own name: %v", err)
	}
	checkApplied(tb, tb.others("web-1"), p.ID, time.UnixMilli(p.NotAfter), 0)
	for _, a := range tb.others("web-1") {
		if n := a.delivered(p.ID); n != 1 {
			t.Errorf("%s: %s delivered %d times, want once (under web-1's name)", a.name, p.ID, n)
		}
	}

	// The admin (or a hostile server) writes a record signed by
	// bastion-1 under web-2's key.
	akv := tb.adminKV()
	q := p
	q.Origin, q.ID = "bastion-1", fleet.NewID()
	envB, err := fleet.Sign(tb.keys["bastion-1"], q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := akv.Create(tb.ctx, natslink.Key("web-2", q.ID), envB); err != nil {
		t.Fatal(err)
	}
	checkRefused(tb, tb.others("web-2"), q.ID, fleet.ReasonSignerNotOrigin)
}

// TestNoMayGrant: web-4's members.hcl entry grants nothing in web: its
// records are refused everywhere.
func TestNoMayGrant(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	p := tb.agents["web-4"].knock("198.51.100.10", openFor)
	checkRefused(tb, tb.others("web-4"), p.ID, fleet.ReasonNotAllowed)
}

// TestReplay: a captured record written again under a new key, by its
// own member's name (the admin stands for a hostile server) or by
// another member, is refused: replayed-id, signer-not-origin.
func TestReplay(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	p := tb.agents["bastion-1"].knock("198.51.100.11", openFor)
	checkApplied(tb, tb.others("bastion-1"), p.ID, time.UnixMilli(p.NotAfter), 0)
	w1 := tb.agents["web-1"]
	w1.mu.Lock()
	var captured []byte
	for _, r := range w1.records {
		if r.ID == p.ID {
			captured = r.Data
		}
	}
	w1.mu.Unlock()
	kv := tb.adminKV()
	newID := fleet.NewID()
	if _, err := kv.Create(tb.ctx, natslink.Key("bastion-1", newID), captured); err != nil {
		t.Fatal(err)
	}
	for _, a := range tb.others("bastion-1") {
		tb.eventually(a.name+" gets the replay", func() bool { return a.delivered(newID) == 1 })
		a.mu.Lock()
		n := 0
		for _, r := range a.refused {
			if r.ID == p.ID && r.Reason == fleet.ReasonReplayedID {
				n++
			}
		}
		nApplied := 0
		for _, g := range a.applied {
			if g.ID == p.ID {
				nApplied++
			}
		}
		a.mu.Unlock()
		if n != 1 || nApplied != 1 {
			t.Errorf("%s: the replay refused as replayed-id %d times, the record applied %d times; want 1, 1", a.name, n, nApplied)
		}
	}
	// web-1 replays it under its own name.
	mid := fleet.NewID()
	w1.link.Publish(testGroup, mid, captured, time.UnixMilli(p.NotAfter))
	for _, a := range tb.others("web-1") {
		if a.name == "bastion-1" {
			continue
		}
		tb.eventually(a.name+" gets web-1's replay", func() bool { return a.delivered(mid) == 1 })
		a.mu.Lock()
		last := a.refused[len(a.refused)-1]
		a.mu.Unlock()
		if last.From != "web-1" || last.Reason != fleet.ReasonSignerNotOrigin {
			t.Errorf("%s: web-1's replay refused as %v from %s, want signer-not-origin from web-1", a.name, last.Reason, last.From)
		}
	}
}

// TestClockSkew: with max_skew 2 s, a receiver whose clock is 3 s behind
// refuses a fresh record as from the future, and one 3 s ahead applies it
// for 3 s less; a publisher 3 s ahead is refused by the others, and one
// 3 s behind gets 3 s less everywhere.
func TestClockSkew(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.start("bastion-1", 0)
	tb.start("web-1", 0)
	tb.start("web-2", -3*time.Second)
	tb.start("web-3", 3*time.Second)
	tb.waitCaughtUp(0, "bastion-1", "web-1", "web-2", "web-3")
	p := tb.agents["bastion-1"].knock("198.51.100.12", openFor)
	checkApplied(tb, []*agent{tb.agents["web-1"], tb.agents["web-3"]}, p.ID, time.UnixMilli(p.NotAfter), 0)
	if g, _ := tb.agents["web-3"].appliedID(p.ID); g.Timeout > openFor-3*time.Second {
		t.Errorf("web-3 (3 s ahead) applied for %v, want at most %v", g.Timeout, openFor-3*time.Second)
	}
	checkRefused(tb, []*agent{tb.agents["web-2"]}, p.ID, fleet.ReasonFromTheFuture)

	ahead := tb.agents["web-3"].knock("198.51.100.13", openFor)
	checkRefused(tb, []*agent{tb.agents["bastion-1"], tb.agents["web-1"], tb.agents["web-2"]}, ahead.ID, fleet.ReasonFromTheFuture)

	behind := tb.agents["web-2"].knock("198.51.100.14", openFor)
	checkApplied(tb, []*agent{tb.agents["bastion-1"], tb.agents["web-1"], tb.agents["web-3"]}, behind.ID, time.UnixMilli(behind.NotAfter), 0)
	for _, m := range []string{"bastion-1", "web-1"} {
		if g, _ := tb.agents[m].appliedID(behind.ID); g.Timeout > openFor-3*time.Second {
			t.Errorf("%s applied the record of a publisher 3 s behind for %v, want at most %v", m, g.Timeout, openFor-3*time.Second)
		}
	}
}

// TestAllRestart: every server stops and starts again (the stores stay):
// every member reconnects and catches up, the records written before are
// still there for a member that comes back, and new records fan out.
func TestAllRestart(t *testing.T) {
	tb := newTestbed(t, 2*time.Minute, true)
	tb.startAll()
	b := tb.agents["bastion-1"]
	p0 := b.knock("198.51.100.30", openFor)
	checkApplied(tb, tb.others("bastion-1"), p0.ID, time.UnixMilli(p0.NotAfter), 0)
	away := tb.agents["web-4"]
	away.link.Close()
	for i := range Nodes {
		tb.c.Stop(i)
	}
	for _, a := range tb.others("web-4") {
		tb.eventually(a.name+" sees the link down", func() bool { return !a.link.Status().Connected })
	}
	start := time.Now()
	for i := range Nodes {
		if err := tb.c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Since(start)
	tb.waitCaughtUp(1, "bastion-1", "web-1", "web-2", "web-3")
	t.Logf("the servers started in %v; 4 members reconnected and caught up %v after", started.Round(time.Millisecond), (time.Since(start) - started).Round(time.Millisecond))
	away.mu.Lock()
	away.records = nil
	away.mu.Unlock()
	tb.open(away)
	tb.eventually("web-4 caught up", func() bool { return away.link.Status().CatchUps >= 1 })
	if n := away.delivered(p0.ID); n != 1 {
		t.Errorf("web-4 got the record written before the restart %d times, want once", n)
	}
	p1 := b.knock("198.51.100.31", openFor)
	checkApplied(tb, tb.others("bastion-1")[:3], p1.ID, time.UnixMilli(p1.NotAfter), 0)
	tb.eventually("web-4 gets the new record", func() bool { return away.delivered(p1.ID) == 1 })
}

// TestRollupAll: a member cannot wipe the others' live records with a
// write under its own name that asks for a roll-up of the whole stream
// (the bucket refuses roll-ups).
func TestRollupAll(t *testing.T) {
	tb := newTestbed(t, time.Minute, true)
	tb.startAll()
	p := tb.agents["bastion-1"].knock("198.51.100.40", openFor)
	checkApplied(tb, tb.others("bastion-1"), p.ID, time.UnixMilli(p.NotAfter), 0)
	nc, err := tb.c.Connect("web-1")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	m := &nats.Msg{Subject: "$KV." + natslink.Bucket(testFleet, testGroup) + "." + natslink.Key("web-1", fleet.NewID()), Header: nats.Header{}, Data: []byte("x")}
	m.Header.Set("Nats-Rollup", "all")
	if _, err := js.PublishMsg(tb.ctx, m); err == nil {
		t.Error("a member's roll-up of the whole bucket was accepted")
	}
	kv := tb.adminKV()
	if _, err := kv.Get(tb.ctx, natslink.Key("bastion-1", p.ID)); err != nil {
		t.Errorf("bastion-1's live record after web-1's roll-up: %v", err)
	}
}

package fleettest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sesame-knock/sesame/fleet/natslink"
)

// catchUpIDs returns the ids of the records a got from catch-ups.
func (a *agent) catchUpIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for _, r := range a.records {
		if r.CatchUp {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// awayScenario starts bastion-1 (every node) and web-1 (node 0 only, and
// it learns no other),
// has bastion-1 write n records that both get, stops node 0 and waits
// for web-1 to see its link down.
func awayScenario(t *testing.T, n int) (tb *testbed, b, w *agent, before []string) {
	tb = newTestbed(t, time.Minute, true, NoAdvertise())
	b = tb.start("bastion-1", 0)
	w = tb.start("web-1", 0, tb.c.URL(0))
	tb.waitCaughtUp(0, "bastion-1", "web-1")
	for i := range n {
		before = append(before, b.knock(fmt.Sprintf("198.51.100.%d", 60+i), openFor).ID)
	}
	for _, id := range before {
		tb.eventually("web-1 gets "+id, func() bool { return w.delivered(id) == 1 })
	}
	tb.c.Stop(0)
	tb.eventually("web-1 sees its link down", func() bool { return !w.link.Status().Connected })
	return tb, b, w, before
}

// knockAway has b write n records while web-1 is away and waits until
// the cluster acknowledged them all; it returns their ids, sorted.
func knockAway(tb *testbed, b *agent, n int) []string {
	tb.t.Helper()
	published := b.link.Status().Published
	var ids []string
	for i := range n {
		ids = append(ids, b.knock(fmt.Sprintf("198.51.100.%d", 80+i), openFor).ID)
	}
	tb.eventually("the cluster acknowledges the records written while web-1 is away", func() bool {
		return b.link.Status().Published >= published+uint64(n)
	})
	slices.Sort(ids)
	return ids
}

// TestResumeAfterRestart: a member whose server restarts catches up from
// where it was: it receives, by the catch-up, exactly the records written
// while it was away, and reads none of those it had again (no duplicate
// to drop); the records before are delivered once, and live records keep
// coming.
func TestResumeAfterRestart(t *testing.T) {
	tb, b, w, before := awayScenario(t, 5)
	catchUps, dups := w.link.Status().CatchUps, w.link.Status().Duplicates
	away := knockAway(tb, b, 3)
	if err := tb.c.Start(0); err != nil {
		t.Fatal(err)
	}
	tb.waitCaughtUp(catchUps, "web-1")
	for _, id := range away {
		tb.eventually("web-1 gets "+id, func() bool { return w.delivered(id) == 1 })
	}
	if got := w.catchUpIDs(); !slices.Equal(got, away) {
		t.Errorf("web-1's catch-up delivered %q, want only the records written while it was away %q", got, away)
	}
	if st := w.link.Status(); st.Duplicates != dups {
		t.Errorf("web-1's catch-up read %d records it had again, want none", st.Duplicates-dups)
	}
	for _, id := range before {
		if n := w.delivered(id); n != 1 {
			t.Errorf("web-1 got %s, written before it went away, %d times, want once", id, n)
		}
	}
	p := b.knock("198.51.100.99", openFor)
	tb.eventually("web-1 gets a live record", func() bool { return w.delivered(p.ID) == 1 })
}

// TestResumeRecreatedBucket: a bucket deleted and created again while a
// member is away is another stream, numbered from 1 again: the member's
// catch-up reads it whole, also the records at sequences it had counted
// in the bucket before.
func TestResumeRecreatedBucket(t *testing.T) {
	tb, b, w, _ := awayScenario(t, 3)
	catchUps := w.link.Status().CatchUps
	_, js := tb.admin()
	stream := natslink.Stream(testFleet, testGroup)
	// With node 0 down, the new bucket has one replica (3 need every node).
	tb.eventually("the admin deletes the bucket and creates it again", func() bool {
		ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return false
		}
		_, err := js.CreateStream(ctx, natslink.StreamConfig(testFleet, testGroup, 1))
		return err == nil
	})
	// More records than web-1 counted before: resuming after its count
	// would miss the first three.
	away := knockAway(tb, b, 5)
	if err := tb.c.Start(0); err != nil {
		t.Fatal(err)
	}
	tb.waitCaughtUp(catchUps, "web-1")
	for _, id := range away {
		tb.eventually("web-1 gets "+id, func() bool { return w.delivered(id) == 1 })
	}
	if got := w.catchUpIDs(); !slices.Equal(got, away) {
		t.Errorf("web-1's catch-up of the new bucket delivered %q, want all of it %q", got, away)
	}
}

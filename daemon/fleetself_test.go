package daemon

import (
	"testing"
	"time"

	"github.com/sesame-knock/sesame/fleet"
)

// TestFleetOwnRecordIgnored: a host receives its own records back from
// the groups it publishes to (it subscribes to them too). They change
// nothing: its local grant keeps no fleet comment (sesame status shows it
// as local) and nothing is counted as applied or refused. Each used to be
// applied as a fleet grant over the local one (found by e2e TestFleet).
func TestFleetOwnRecordIgnored(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t) // member web-1
	for _, kind := range []string{fleet.KindOpen, fleet.KindClose} {
		f.receive(f.record(t, "web-1", kind, client, 30*time.Second, nil), "web-1", false)
		f.receive(f.record(t, "web-1", kind, client, 30*time.Second, nil), "web-1", true)
	}
	if len(f.tbl.calls) != 0 {
		t.Errorf("its own records reached the table: %+v", f.tbl.calls)
	}
	if n, r := f.fs.applied.Load(), f.fs.refusedN.Load(); n != 0 || r != 0 {
		t.Errorf("applied %d, refused %d; want 0 and 0", n, r)
	}
	// Another member's record still applies.
	f.receive(f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil), "bastion-1", false)
	if len(f.tbl.calls) != 1 {
		t.Errorf("bastion-1's record: %d Apply calls, want 1", len(f.tbl.calls))
	}
}

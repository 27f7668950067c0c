package daemon

import (
	"context"
	"path/filepath"
	"testing"
)

// TestFleetStatusMakesStateDir: sesame run writes the fleet status even
// when state_dir does not exist yet (it is made on first use, as for the
// TOTP burns), so that sesame status shows the link from the start. The
// status used to be "not saved" until some other state created the
// directory.
func TestFleetStatusMakesStateDir(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	dir := filepath.Join(t.TempDir(), "state", "sesame")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one write, then return
	f.fs.writeStatus(ctx, dir, FleetStatus{Fleet: "prod", Member: "web-1", Groups: []string{"web"}},
		func() FleetLinkStatus { return FleetLinkStatus{Server: "nats://192.0.2.10:4222"} })
	st, err := ReadFleetStatus(dir)
	if err != nil {
		t.Fatalf("no fleet status in a state_dir that did not exist: %v", err)
	}
	if st.Fleet != "prod" || st.Member != "web-1" || st.Link.Server != "nats://192.0.2.10:4222" {
		t.Errorf("fleet status = %+v", st)
	}
}

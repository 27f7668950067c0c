package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// driftTable drifts as the test says, and reports every Verify and Ensure.
type driftTable struct {
	calls chan string
	mu    sync.Mutex
	drift []nft.Drift // returned by Verify in turn; then none
	fail  []error     // returned by Ensure in turn; then nil
}

func (f *driftTable) Verify() (nft.Drift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls <- "verify"
	var d nft.Drift
	if len(f.drift) > 0 {
		d, f.drift = f.drift[0], f.drift[1:]
	}
	return d, nil
}

func (f *driftTable) Ensure(*policy.Policy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls <- "ensure"
	var err error
	if len(f.fail) > 0 {
		err, f.fail = f.fail[0], f.fail[1:]
	}
	return err
}

// The healer checks the table when an event says it changed, not on a
// timer (the backstop is 10s away), restores it, and retries a failed
// restore; it stops with ctx.
func TestHealerOnTableEvent(t *testing.T) {
	t.Parallel()
	met := newMetrics("test", "test")
	h := newHealer(slog.New(slog.DiscardHandler), met)
	tbl := &driftTable{
		calls: make(chan string, 16),
		drift: []nft.Drift{{What: "table inet sesame is gone"}, {What: "table inet sesame is gone"}},
		fail:  []error{errors.New("boom")},
	}
	r := &reloader{cur: &policy.Policy{Table: "sesame"}, caps: &captures{}}
	h.mu, h.table, h.r = &r.mu, tbl, r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()

	next := func(want string) {
		t.Helper()
		select {
		case got := <-tbl.calls:
			if got != want {
				t.Fatalf("healer called %s, want %s", got, want)
			}
		case <-time.After(tableBackstop / 2):
			t.Fatalf("no %s within %s: the healer waits for its backstop", want, tableBackstop/2)
		}
	}
	kick(h.tableChanged)
	next("verify")
	next("ensure") // fails: retried
	next("verify")
	next("ensure")
	if got := counter(t, met, "sesame_table_restores_total"); got != 1 {
		t.Errorf("table_restores_total = %v, want 1", got)
	}
	kick(h.tableChanged) // sesame's own restore, as the monitor reports it
	next("verify")       // no drift: nothing else
	cancel()
	<-done
	select {
	case c := <-tbl.calls:
		t.Errorf("healer called %s after a check that found nothing", c)
	default:
	}
}

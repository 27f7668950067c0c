package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/totp"
)

// Regression tests for issue 12: what the TOTP matcher counts reaches the
// metrics as the static matcher's does.

// TestMetricsReplayedReset: a replayed TOTP sequence is counted as reset
// reason "replayed". On main it was counted as "other".
func TestMetricsReplayedReset(t *testing.T) {
	t.Parallel()
	m := newMetrics("test", "test")
	m.decision(&knock.Decision{Kind: knock.Reset, Reason: knock.Replayed})
	if got := labeled(t, m, "sesame_resets_total", "reason", "replayed"); got != 1 {
		t.Errorf(`resets_total{reason="replayed"} = %v, want 1`, got)
	}
	if got := labeled(t, m, "sesame_resets_total", "reason", "other"); got != 0 {
		t.Errorf(`resets_total{reason="other"} = %v, want 0`, got)
	}
}

// TestMetricsTOTPTracked: sources in the middle of a TOTP knock, and the
// TOTP matcher's evictions, are in tracked_sources and evictions_total
// after a tick. On main only the static matcher's were.
func TestMetricsTOTPTracked(t *testing.T) {
	t.Parallel()
	p := totpPolicy(t)
	l, _, now := newTestLoop(t, &fakeTable{}, p)
	l.met = newMetrics("test", "test")
	seq := totp.Sequence(p.Doors[0].Clients[0].Secret, totp.Counter(*now, 30*time.Second), 20000, 29999, 4)
	// Far more sources than the TOTP matcher holds: some are evicted.
	const sources = knock.DefaultMaxEntries + 10
	for i := range sources {
		h := syn(seq[0])
		h.Src = netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		l.observe(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, nil, nil, tick, nil)
	}()
	tick <- *now
	tick <- *now // the first tick's snapshot is done once the second is taken
	cancel()
	<-done
	if got := l.met.tracked.Load(); got == 0 {
		t.Errorf("tracked_sources = 0 with %d sources in the middle of a TOTP knock", sources)
	}
	if got := l.met.evicted.Load(); got == 0 {
		t.Errorf("evictions_total = 0 after %d sources on a TOTP matcher of %d entries", sources, knock.DefaultMaxEntries)
	}
}

// labeled reads the value of a counter vector's child by one label.
func labeled(t *testing.T, m *metrics, name, label, value string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, c := range mf.GetMetric() {
			for _, lp := range c.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return c.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

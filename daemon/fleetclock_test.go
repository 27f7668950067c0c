package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/logevent"
)

// TestSkipClockCheck: only SESAME_FLEET_SKIP_CLOCK_CHECK=1 turns the
// clock check off.
func TestSkipClockCheck(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"1": true, "": false, "0": false, "true": false, "yes": false} {
		getenv := func(k string) string {
			if k == SkipClockCheckEnv {
				return v
			}
			return ""
		}
		if got := skipClockCheck(getenv); got != want {
			t.Errorf("%s=%q: skip = %v, want %v", SkipClockCheckEnv, v, got, want)
		}
	}
}

// TestStartFleetClockCheck: sesame run checks the kernel's clock state
// (adjtimex) unless SESAME_FLEET_SKIP_CLOCK_CHECK=1, which it then says
// once at start. With the check off, a host whose kernel reports
// TIME_ERROR (no NTP daemon, as in a test machine) still applies fleet
// records.
func TestStartFleetClockCheck(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(map[bool]string{false: "checked", true: "skipped"}[skip], func(t *testing.T) {
			if skip {
				t.Setenv(SkipClockCheckEnv, "1")
			} else {
				t.Setenv(SkipClockCheckEnv, "")
			}
			p := testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp")
			p.StateDir = t.TempDir()
			_, key, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			fc := &fleet.Config{Self: fleet.Self{Fleet: "prod", Groups: []string{"web"}}, Member: "web-1", Key: key,
				Servers: []string{"nats://127.0.0.1:1"}, Publish: map[string][]string{}}
			var buf bytes.Buffer
			var mu sync.Mutex
			log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
			ctx, cancel := context.WithCancel(context.Background())
			var bg sync.WaitGroup
			fs, err := startFleet(ctx, &bg, log, p, fc, newMetrics("test", "test"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); bg.Wait(); fs.link.Close() }()
			state, err := fs.clockState()
			real, rerr := adjtimexState()
			mu.Lock()
			logged := strings.Contains(buf.String(), "msg="+logevent.FleetClockCheckOff)
			mu.Unlock()
			switch {
			case skip && (state != unix.TIME_OK || err != nil || !logged):
				t.Errorf("check off: clock state %d, %v (want TIME_OK), logged %s: %v", state, err, logevent.FleetClockCheckOff, logged)
			case !skip && (state != real || (err == nil) != (rerr == nil) || logged):
				t.Errorf("check on: clock state %d, %v; adjtimex says %d, %v; logged %s: %v", state, err, real, rerr, logevent.FleetClockCheckOff, logged)
			}
			// The clock is checked at start, before the link's first
			// records (the catch-up comes at once), not at the first tick
			// a second later: records were applied in between.
			if want := !skip && rerr == nil && real == unix.TIME_ERROR; fs.recv.Unsynced != want {
				t.Errorf("right after start the receiver's Unsynced = %v; want %v (adjtimex says %d)", fs.recv.Unsynced, want, real)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

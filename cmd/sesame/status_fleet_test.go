package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/daemon"
)

func TestFleetOrigin(t *testing.T) {
	for _, tc := range []struct{ comment, origin, record string }{
		{"fleet:ssh:bastion-1:9f1c", "bastion-1", "9f1c"},
		{"ssh", "", ""},
		{"fleet:ssh:bastion-1", "", ""},
		{"fleet:a:b:c:d", "", ""},
	} {
		if o, r := fleetOrigin(tc.comment); o != tc.origin || r != tc.record {
			t.Errorf("fleetOrigin(%q) = %q, %q; want %q, %q", tc.comment, o, r, tc.origin, tc.record)
		}
	}
}

func TestWriteFleet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := daemon.FleetStatus{Updated: now.Add(-time.Second), Fleet: "prod", Member: "web-1", Groups: []string{"web"},
		Link:    daemon.FleetLinkStatus{Connected: true, Server: "nats://192.0.2.10:4222", Since: now.Add(-time.Hour), LastRecord: now.Add(-12 * time.Second), LastLag: 0.003, CatchUps: 2},
		Applied: 17, Refused: 2}
	for _, tc := range []struct {
		name string
		st   fleetStatus
		want []string
	}{
		{"connected", fleetStatus{FleetStatus: base}, []string{
			"fleet prod, member web-1, groups [web]: connected to nats://192.0.2.10:4222 since 1h0m0s ago",
			"last record 12s ago (lag 3ms); catch-ups 2",
			"applied 17 (last never",
		}},
		{"down", func() fleetStatus {
			s := fleetStatus{FleetStatus: base}
			s.Link.Connected, s.ClockUnsynced = false, true
			return s
		}(), []string{": DOWN since 1h0m0s ago", "CLOCK UNSYNCHRONISED"}},
		{"stale", fleetStatus{FleetStatus: base, Stale: true}, []string{"unknown: the status was written 1s ago (is sesame run running?); last seen connected"}},
		{"missing", fleetStatus{Error: "sesame run has not written a fleet status (is it running?)"}, []string{"fleet: unknown: sesame run has not written"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeFleet(&b, &tc.st, now)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

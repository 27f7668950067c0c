package daemon

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
)

// Receiver bounds: ids remembered, and each origin's rate cap (records a
// second, burst) of records applied here.
const (
	fleetSeenCap = 65536
	fleetRate    = 10
	fleetBurst   = 100
)

// SkipClockCheckEnv, set to 1 in sesame run's environment, turns off the
// check that the kernel's clock is synchronised (adjtimex TIME_ERROR
// refuses every fleet record): for e2e tests and make demo-fleet, whose
// hosts are namespaces of one machine that share its clock, synchronised
// or not. A host of a real fleet never sets it: its deadlines are only as
// good as its clock.
const SkipClockCheckEnv = "SESAME_FLEET_SKIP_CLOCK_CHECK"

// skipClockCheck reports whether getenv sets SkipClockCheckEnv to 1.
func skipClockCheck(getenv func(string) string) bool { return getenv(SkipClockCheckEnv) == "1" }

// clockAssumedSynced is the clock state when the check is off.
func clockAssumedSynced() (int, error) { return unix.TIME_OK, nil }

// startFleet opens the fleet link for fc and starts the publisher and the
// status writer in bg. The link connects in the background: a cluster that
// is down does not stop the start (local knocks work; status says so).
func startFleet(ctx context.Context, bg *sync.WaitGroup, log *slog.Logger, p *policy.Policy, fc *fleet.Config, met *metrics) (*fleetState, error) {
	fs := newFleetState(log, fleet.NewReceiver(fc.Members, fc.Self, fleetSeenCap, fleetRate, fleetBurst),
		fleet.Origin{Fleet: fc.Self.Fleet, Member: fc.Member, Key: fc.Key}, met.reg)
	if skipClockCheck(os.Getenv) {
		fs.clockState = clockAssumedSynced
		log.Warn(logevent.FleetClockCheckOff, "env", SkipClockCheckEnv+"=1",
			"note", "the clock's synchronisation is not checked: fleet records are applied even if adjtimex reports TIME_ERROR (for tests and demos whose hosts share one clock)")
	}
	fs.checkClock() // before the first record: the catch-up comes at once
	link, err := natslink.Open(natslink.Config{
		Fleet: fc.Self.Fleet, Member: fc.Member,
		Receive: fc.Self.Groups, Publish: fc.Self.Groups,
		Servers: fc.Servers, Creds: fc.Creds, CA: fc.CA, Log: log,
	}, func(r natslink.Record) {
		fs.deliver(fleetRecord{data: r.Data, from: r.From, group: r.Group, catchUp: r.CatchUp})
	})
	if err != nil {
		return nil, err
	}
	fs.link = link
	registerLinkMetrics(met.reg, link)
	bg.Go(func() { fs.runPublisher(ctx) })
	base := FleetStatus{Fleet: fc.Self.Fleet, Member: fc.Member, Groups: fc.Self.Groups}
	bg.Go(func() {
		fs.writeStatus(ctx, p.StateDir, base, func() FleetLinkStatus { return linkStatus(link.Status()) })
	})
	return fs, nil
}

func linkStatus(s natslink.Status) FleetLinkStatus {
	return FleetLinkStatus{
		Connected: s.Connected, Server: s.Server, Since: s.Since,
		LastRecord: s.LastRecord, LastLag: s.LastLag.Seconds(),
		CatchingUp: s.CatchingUp, CatchUps: s.CatchUps, LastCatchUp: s.LastCatchUp,
		Published: s.Published, Failed: s.PublishFailed,
	}
}

// registerLinkMetrics exports the link's own state at each scrape.
func registerLinkMetrics(reg *prometheus.Registry, link *natslink.Link) {
	if reg == nil {
		return
	}
	gauge := func(name, help string, f func(natslink.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "sesame", Subsystem: "fleet", Name: name, Help: help},
			func() float64 { return f(link.Status()) })
	}
	counter := func(name, help string, f func(natslink.Status) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "sesame", Subsystem: "fleet", Name: name, Help: help},
			func() float64 { return float64(f(link.Status())) })
	}
	reg.MustRegister(
		gauge("connected", "1 while the fleet link is connected to a NATS server.", func(s natslink.Status) float64 { return b2f(s.Connected) }),
		counter("records_published_total", "Records of this host's opens and closes that the cluster acknowledged.", func(s natslink.Status) uint64 { return s.Published }),
		counter("publish_failed_total", "Records given up at not_after - 1s without an acknowledgement.", func(s natslink.Status) uint64 { return s.PublishFailed }),
		counter("records_delivered_total", "Records the link delivered to this host (live and catch-up).", func(s natslink.Status) uint64 { return s.Delivered }),
		counter("records_malformed_total", "Messages whose subject or key names no member and id: dropped by the link.", func(s natslink.Status) uint64 { return s.Malformed }),
		counter("catch_ups_total", "Catch-ups of live records after a (re)connect.", func(s natslink.Status) uint64 { return uint64(s.CatchUps) }),
		gauge("publish_ack_seconds", "The last publish's acknowledgement latency.", func(s natslink.Status) float64 { return s.PublishAck.Seconds() }),
	)
}

// reload takes the fleet config of a reloaded policy (on the loop
// goroutine): members.hcl and the doors are re-read, so a reload revokes
// or grants members' rights and follows the doors; a change of what the
// link was opened with (fleet, member, key, groups, servers, creds, ca),
// or a fleet block added or removed, takes a restart.
func (f *fleetState) reload(cur *fleet.Config, p *policy.Policy, next *fleet.Config) {
	if next == nil || !sameLink(cur, next) {
		f.log.Warn(logevent.NeedsRestart, "setting", "fleet", "note", "the fleet block changed (fleet, member, key, groups, servers, creds or ca): that takes a restart; still serving the previous fleet link with the new doors and members")
	}
	if next != nil {
		f.recv.Members = next.Members
	}
	f.recv.Self.Doors = fleet.DoorsOf(p)
	if next != nil {
		f.recv.Self.MaxSkew = next.Self.MaxSkew
	}
}

func sameLink(a, b *fleet.Config) bool {
	return a.Self.Fleet == b.Self.Fleet && a.Member == b.Member && a.Key.Equal(b.Key) &&
		slices.Equal(a.Self.Groups, b.Self.Groups) && slices.Equal(a.Servers, b.Servers) && a.Creds == b.Creds && a.CA == b.CA
}

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/onetime"
	"github.com/sesame-knock/sesame/policy"
)

// Fleet mode (docs/design.md "Fleet"). A fleet grant is one more grant
// source of the loop, like SPA: the link delivers records on its own
// goroutine into fleetState.in (bounded; a full queue drops and counts);
// the loop decides on each (fleet.Receiver: every check of the contract)
// and applies the opens and closes in the same nftables batches as local
// grants, with a comment naming door, origin and id. A local open or
// close of a door with fleet_groups is handed, once its grant landed, to
// the publisher goroutine (bounded queue), which signs it and gives it to
// the link: signing and the network are off the hot path.

// fleetLink is what the daemon needs of the fleet's transport
// (natslink.Link); tests give it a fake.
type fleetLink interface {
	Publish(group, id string, env []byte, notAfter time.Time) bool
	Close()
}

// fleetRecord is one record the link delivered.
type fleetRecord struct {
	data    []byte
	from    string // the member the transport names as its writer
	group   string
	catchUp bool
}

// fleetPub is a local open or close to publish to a door's groups.
type fleetPub struct {
	kind    string // fleet.KindOpen or KindClose
	door    string
	groups  []string
	src     netip.Addr
	ports   []policy.PortProto
	openFor time.Duration
	at      time.Time
	burns   []string
}

// Queue bounds: records received and not yet decided on, and local opens
// not yet signed and handed to the link.
const (
	fleetInQueue  = 4096
	fleetPubQueue = 4096
)

// fleetState is the daemon's side of fleet mode. recv and unsynced belong
// to the loop goroutine; in, pub and the counters are shared.
type fleetState struct {
	log    *slog.Logger
	recv   *fleet.Receiver
	origin fleet.Origin
	link   fleetLink
	in     chan fleetRecord
	pub    chan fleetPub
	met    *fleetMetrics
	now    func() time.Time

	// clockState returns the kernel's clock state (adjtimex; TIME_ERROR
	// means unsynchronised).
	clockState func() (int, error)

	refusedLog, droppedLog refusalLimiter
	dropped                atomic.Uint64
	applied, refusedN      atomic.Uint64
	unsyncedNow            atomic.Bool
	last                   atomic.Int64 // unix ms of the last record applied
	lastLag                atomic.Int64 // its publish-to-apply latency, ns
}

func newFleetState(log *slog.Logger, recv *fleet.Receiver, origin fleet.Origin, reg *prometheus.Registry) *fleetState {
	return &fleetState{
		log:        log,
		recv:       recv,
		origin:     origin,
		in:         make(chan fleetRecord, fleetInQueue),
		pub:        make(chan fleetPub, fleetPubQueue),
		met:        newFleetMetrics(reg),
		now:        time.Now,
		clockState: adjtimexState,
		refusedLog: refusalLimiter{perSecond: hitLogsPerSecond},
		droppedLog: refusalLimiter{perSecond: 1},
	}
}

// adjtimexState reads the kernel's clock state without changing it.
func adjtimexState() (int, error) {
	var tx unix.Timex // Modes 0: read only
	return unix.Adjtimex(&tx)
}

// deliver queues a record from the link for the loop; it never blocks. A
// full queue drops the record: this host then misses that grant (fail
// closed), which the drop counter and a rate-limited line say.
func (f *fleetState) deliver(r fleetRecord) {
	select {
	case f.in <- r:
	default:
		f.dropped.Add(1)
		f.met.dropped.Inc()
		if n, ok := f.droppedLog.allow(f.now()); ok {
			f.log.Warn(logevent.FleetDropped, "group", r.group, "from", r.from, "suppressed", n,
				"note", "the fleet receive queue is full: records are lost here; the hosts that got them open")
		}
	}
}

// publish queues a local open or close for the publisher; it never
// blocks.
func (f *fleetState) publish(p fleetPub) {
	select {
	case f.pub <- p:
	default:
		f.met.pubDropped.Inc()
		if n, ok := f.droppedLog.allow(f.now()); ok {
			f.log.Warn(logevent.FleetPublishDropped, "door", p.door, "src", p.src.String(), "suppressed", n,
				"note", "the fleet publish queue is full: this open stays local")
		}
	}
}

// runPublisher signs queued opens and closes, one record per group, and
// hands them to the link, until ctx ends.
func (f *fleetState) runPublisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-f.pub:
			for _, g := range p.groups {
				id, env, err := f.origin.Record(p.kind, g, p.door, p.src, p.ports, p.openFor, p.at, p.burns)
				if err != nil { // a bug: our own record does not encode
					f.log.Error(logevent.FleetPublishDropped, "door", p.door, "group", g, "err", err)
					continue
				}
				if !f.link.Publish(g, id, env, p.at.Add(p.openFor)) {
					f.met.pubDropped.Inc()
					continue
				}
				f.met.queued.WithLabelValues(p.kind).Inc()
			}
		}
	}
}

// fleetIn is the channel of received records, or nil without fleet mode.
func (l *loop) fleetIn() <-chan fleetRecord {
	if l.fleet == nil {
		return nil
	}
	return l.fleet.in
}

// fleetReceive decides on one record and queues what it calls for.
func (l *loop) fleetReceive(r fleetRecord) {
	f := l.fleet
	if r.from == f.origin.Member {
		// This host's own record, back from the group it published to:
		// its grant is local here already. Applying it would make the
		// local grant a fleet grant (comment, origin in sesame status,
		// the applied count) and re-burn what it used.
		return
	}
	now := l.now()
	a := f.recv.Receive(r.data, r.from, now)
	if !a.Applies() {
		f.refused(r, a)
		return
	}
	door := l.p.Door(a.DoorName)
	if door == nil { // Decide checked it against the same policy
		return
	}
	l.fleetBurn(door, a.Burns, now)
	switch a.Kind {
	case fleet.KindOpen:
		l.queue(nft.Grant{Src: a.Src, Door: door.Name, Kind: nft.Open, Ports: a.Ports, Forward: len(door.Forward) > 0, TTL: a.Timeout, Comment: a.Comment},
			queued{fleet: &fleetQueued{a: a, rec: r}, hook: l.hookFor("open", door, door.OnOpen, a.Src.String())})
	case fleet.KindClose:
		f.recv.Landed(a)
		f.applied.Add(1)
		f.met.applied.WithLabelValues(a.Kind).Inc()
		attrs := []any{"door", door.Name, "src", a.Src.String(), "origin", a.Origin, "id", a.ID, "group", r.group}
		if !a.Revoke {
			f.log.Debug(logevent.FleetClose, append(attrs, "note", "nothing of this origin's to remove")...)
			return
		}
		if len(l.grants) > 0 {
			l.flush()
		}
		l.revokes = append(l.revokes, nft.Revoke{Src: a.Src, Door: door.Name, Ports: a.RevokePorts, Forward: len(door.Forward) > 0})
		l.closing = append(l.closing, l.hookFor("close", door, door.OnClose, a.Src.String()))
		f.log.Info(logevent.FleetClose, append(attrs, "ports", policy.FormatPorts(a.RevokePorts))...)
	}
}

// fleetBurn burns here what the origin's grant used up: the SPA packet
// (a replay to this host is refused) and the TOTP sequence.
func (l *loop) fleetBurn(door *policy.Door, burns []fleet.Burn, now time.Time) {
	for _, b := range burns {
		switch {
		case b.SPA != nil:
			l.spa.burn(*b.SPA, now)
		case b.OneTime != "" && door.Kind() == policy.KindOneTime:
			l.burnOneTime(door, b.OneTime)
		case door.Kind() == policy.KindTOTP:
			l.tm.Restore([]knock.Burn{{Door: door.Name, Client: b.Client, Counter: b.Counter}})
			l.burnsDirty = true
		}
	}
}

// burnOneTime marks the one-time sequence with key used at this host too,
// wherever it is in the door's list: a sniffer of the knock at another
// member cannot replay it here.
func (l *loop) burnOneTime(door *policy.Door, key string) {
	i := slices.IndexFunc(door.OneTime, func(s policy.OneTimeSeq) bool { return s.Key == key })
	if i < 0 {
		return // not in this host's file, or used here already
	}
	seq := door.OneTime[i]
	if err := onetime.MarkUsed(door.OneTimeUsed, key); err != nil && !errors.Is(err, onetime.ErrUsed) {
		// Not recorded: it stays usable here after a restart, but not now.
		l.log.Error(logevent.OneTimeMarkFailed, "door", door.Name, "file", door.OneTimeFile, "line", seq.Line, "state", door.OneTimeUsed, "err", err, "note", "a sequence used at another member is refused until a restart")
	}
	door.OneTime = slices.Delete(slices.Clone(door.OneTime), i, i+1)
	door.Sequence = nil
	if len(door.OneTime) > 0 {
		door.Sequence = door.OneTime[0].Steps
	}
	l.m.Update(l.p)
	l.log.Info(logevent.OneTimeUsed, "door", door.Name, "file", door.OneTimeFile, "line", seq.Line, "left", len(door.OneTime), "via", "fleet")
}

// fleetDeadlines takes the time left of each queued fleet grant again
// just before the batch is written: the timeout was computed when the
// record was decided on, and a batch that waits (a slow netlink, a loop
// behind under load) must not carry a grant past its not_after.
func (l *loop) fleetDeadlines() {
	if l.fleet == nil {
		return
	}
	now := l.now()
	for i := range l.queued {
		if q := l.queued[i].fleet; q != nil {
			left := q.a.NotAfter.Sub(now).Truncate(time.Millisecond)
			l.grants[i].TTL = max(min(l.grants[i].TTL, left), time.Millisecond)
		}
	}
}

// fleetQueued is a queued fleet grant: what settle needs to log it.
type fleetQueued struct {
	a   fleet.Action
	rec fleetRecord
}

// fleetLanded remembers, logs and counts a fleet grant in the kernel.
func (l *loop) fleetLanded(g nft.Grant, q *fleetQueued) {
	f, a := l.fleet, q.a
	f.recv.Landed(a)
	f.applied.Add(1)
	now := l.now()
	lag := now.Sub(a.IssuedAt)
	f.met.applied.WithLabelValues(a.Kind).Inc()
	f.met.latency.Observe(max(lag, 0).Seconds())
	f.last.Store(now.UnixMilli())
	f.lastLag.Store(int64(lag))
	attrs := []any{"door", g.Door, "src", g.Src.String(), "ports", policy.FormatPorts(g.Ports), "for", g.TTL.String(),
		"origin", a.Origin, "id", a.ID, "group", q.rec.group, "lag", lag.Round(time.Millisecond).String()}
	if q.rec.catchUp {
		attrs = append(attrs, "catch_up", true)
	}
	f.log.Info(logevent.FleetOpen, attrs...)
}

// refused counts a refusal and logs it, rate-limited. A catch-up that
// delivers a record already applied is not a refusal: it is counted as a
// duplicate and logged at debug.
func (f *fleetState) refused(r fleetRecord, a fleet.Action) {
	if r.catchUp && a.Reason == fleet.ReasonReplayedID {
		f.met.duplicates.Inc()
		return
	}
	f.met.refused[a.Reason].Inc()
	f.refusedN.Add(1)
	n, ok := f.refusedLog.allow(f.now())
	if !ok {
		return
	}
	attrs := []any{"reason", a.Reason.String(), "origin", a.Origin, "door", a.DoorName, "src", a.SrcText, "group", r.group, "from", r.from}
	if a.ID != "" {
		attrs = append(attrs, "id", a.ID)
	}
	if a.Err != nil {
		attrs = append(attrs, "err", a.Err.Error())
	}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	f.log.Warn(logevent.FleetRefused, attrs...)
}

// fleetTick forgets expired ids and checks the clock, once a tick.
func (l *loop) fleetTick(now time.Time) {
	f := l.fleet
	if f == nil {
		return
	}
	f.recv.Expire(now)
	f.checkClock()
}

// checkClock reads the kernel's clock state and refuses (or applies
// again) fleet records from now on, saying so when it changes. It runs at
// start, before the link can deliver the catch-up, and every tick.
func (f *fleetState) checkClock() {
	state, err := f.clockState()
	unsynced := err == nil && state == unix.TIME_ERROR
	if unsynced != f.recv.Unsynced {
		f.recv.Unsynced = unsynced
		if unsynced {
			f.log.Error(logevent.FleetUnsynced, "note", "adjtimex reports TIME_ERROR: the clock is not synchronised, so fleet records are refused (clock-unsynced) until it is; local knocks still open")
		} else {
			f.log.Info(logevent.FleetSynced, "note", "fleet records are applied again")
		}
	}
	f.met.unsynced.Set(b2f(unsynced))
	f.unsyncedNow.Store(unsynced)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fleetPubFor returns what to publish once a local grant of door to src
// over ports for ttl lands, or nil when the door publishes nothing.
func (l *loop) fleetPubFor(door *policy.Door, src netip.Addr, ports []policy.PortProto, ttl time.Duration, burns ...string) *fleetPub {
	if l.fleet == nil || len(door.FleetGroups) == 0 || len(ports) == 0 {
		return nil
	}
	return &fleetPub{kind: fleet.KindOpen, door: door.Name, groups: door.FleetGroups, src: src, ports: ports, openFor: ttl, burns: burns}
}

// fleetPublishClose publishes a close sequence's revoke of door for src.
func (l *loop) fleetPublishClose(door *policy.Door, src netip.Addr) {
	if l.fleet == nil || len(door.FleetGroups) == 0 || len(door.Open) == 0 {
		return
	}
	l.fleet.publish(fleetPub{kind: fleet.KindClose, door: door.Name, groups: door.FleetGroups, src: src, ports: door.Open, openFor: door.OpenFor, at: l.now()})
}

// fleetLocal is called once a local grant landed: it publishes it and
// tells the receiver that the element is no longer a fleet grant.
func (l *loop) fleetLocal(g nft.Grant, p *fleetPub) {
	if l.fleet == nil {
		return
	}
	l.fleet.recv.Local(g.Door, g.Src)
	if p != nil {
		p.at = l.now()
		l.fleet.publish(*p)
	}
}

// fleetMetrics count records by outcome.
type fleetMetrics struct {
	applied    *prometheus.CounterVec // by kind
	refused    map[fleet.Reason]prometheus.Counter
	duplicates prometheus.Counter
	dropped    prometheus.Counter
	queued     *prometheus.CounterVec // by kind: handed to the link
	pubDropped prometheus.Counter
	latency    prometheus.Histogram
	unsynced   prometheus.Gauge
}

func newFleetMetrics(reg *prometheus.Registry) *fleetMetrics {
	m := &fleetMetrics{refused: map[fleet.Reason]prometheus.Counter{}}
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "sesame", Subsystem: "fleet", Name: name, Help: help}
	}
	m.applied = prometheus.NewCounterVec(opts("records_applied_total", "Fleet records of other members applied here, by kind (open, close)."), []string{"kind"})
	refused := prometheus.NewCounterVec(opts("records_refused_total", "Fleet records refused here, by reason."), []string{"reason"})
	for _, r := range fleet.Reasons() {
		m.refused[r] = refused.WithLabelValues(r.String())
	}
	m.duplicates = prometheus.NewCounter(opts("records_duplicate_total", "Records a catch-up delivered again after they were applied."))
	m.dropped = prometheus.NewCounter(opts("records_dropped_total", "Records lost because the receive queue was full."))
	m.queued = prometheus.NewCounterVec(opts("records_queued_total", "Local opens and closes signed and handed to the fleet link, one per group, by kind."), []string{"kind"})
	m.pubDropped = prometheus.NewCounter(opts("publish_dropped_total", "Local opens or closes not published because a queue was full."))
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sesame", Subsystem: "fleet", Name: "apply_latency_seconds",
		Help:    "From a record's issued_at at its origin to its grant landing here (includes clock skew between the two hosts).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.unsynced = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sesame", Subsystem: "fleet", Name: "clock_unsynced",
		Help: "1 while the kernel reports the clock unsynchronised (no fleet record is applied)."})
	if reg != nil {
		reg.MustRegister(m.applied, refused, m.duplicates, m.dropped, m.queued, m.pubDropped, m.latency, m.unsynced)
	}
	return m
}

package daemon

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// Granter is what the loop needs from the nftables table.
type Granter interface {
	Apply(grants []nft.Grant, revokes []nft.Revoke) error
}

var _ Granter = (*nft.Table)(nil)

// maxBatch bounds how many queued hits one iteration observes before it
// applies the grants they earned in one transaction.
const maxBatch = 256

// loop is the single goroutine that owns the matcher: no locks on the hot
// path. It observes hits, applies the resulting grants and revokes in one
// nftables transaction per batch, expires stale sequences every tick and
// swaps policies on reload.
type loop struct {
	log   *slog.Logger
	table Granter
	// ms are the knock matchers, one per kind of knocked door
	// (knock.Matchers): every hit, tick and reload goes to each of them.
	// SPA doors are opened by spa requests instead (spagrant.go).
	ms   []knock.DoorMatcher
	m    *knock.Matcher     // ms[knock.SequenceMatcher]: one-time doors advance in it
	tm   *knock.TOTPMatcher // ms[knock.TOTPMatchers]: TOTP burns (totpburn.go)
	p    *policy.Policy     // the policy in force; one-time doors advance in it
	now  func() time.Time
	used []*policy.Door // one-time doors whose sequence was used in this batch
	// burnsDirty: a TOTP sequence was burned in this batch (totpburn.go)
	burnsDirty bool
	met        *metrics // nil: not counted

	grants  []nft.Grant
	queued  []queued // queued[i]: what to do once grants[i] landed or failed
	revokes []nft.Revoke
	closing []*HookJob // closing[i]: the on_close hook of revokes[i], or nil
	// hitAt is when capture read the hit being observed: a debug line per
	// grant gives the daemon's own share of the knock-to-grant latency.
	hitAt time.Time

	hooks HookSubmitter // nil: hooks are not run

	spa *spaState // nil: no SPA; its out channel feeds spaGrant (spagrant.go)

	fleet *fleetState // nil: no fleet mode; its in channel feeds fleetReceive (fleet.go)

	hitLog hitLog // rate-limits the lines any packet can cause (loglimit.go)
}

func newLoop(log *slog.Logger, table Granter, p *policy.Policy, cfg knock.Config) *loop {
	ms := knock.Matchers(p, cfg)
	return &loop{
		log:   log,
		table: table,
		ms:    ms,
		m:     ms[knock.SequenceMatcher].(*knock.Matcher),
		tm:    ms[knock.TOTPMatchers].(*knock.TOTPMatcher),
		p:     p,
		now:   time.Now,
	}
}

// run serves until ctx ends. On a signal from hup it calls reload, which
// ensures the table and capture for the new policy and returns it, or nil to
// keep the old one; the matcher then keeps the state of unchanged doors.
func (l *loop) run(ctx context.Context, hits <-chan *hitBatch, hup <-chan os.Signal, tick <-chan time.Time, reload func() *policy.Policy) {
	for {
		select {
		case <-ctx.Done():
			l.hitLog.summarize(l.log, l.now(), true)
			return
		case b := <-hits:
			n := l.observeBatch(b)
		drain:
			for n < maxBatch {
				select {
				case b := <-hits:
					n += l.observeBatch(b)
				default:
					break drain
				}
			}
			l.flush()
		case r := <-l.spaRequests():
			l.spaGrant(r)
			l.flush()
		case r := <-l.fleetIn():
			l.fleetReceive(r)
		fleet:
			for n := 1; n < maxBatch; n++ {
				select {
				case r := <-l.fleet.in:
					l.fleetReceive(r)
				default:
					break fleet
				}
			}
			l.flush()
		case <-tick:
			l.tick(l.now())
		case <-hup:
			if p := reload(); p != nil {
				for _, m := range l.ms {
					m.Update(p)
				}
				l.p = p
			}
		}
	}
}

func (l *loop) observe(h knock.Hit) {
	l.hitAt = h.At
	now := l.now()
	for _, m := range l.ms {
		l.decide(m.Observe(h, now))
	}
	l.advanceOneTime()
}

// tick expires stale progress in every matcher, applies what that calls
// for, copies the matchers' counters to the metrics and writes the
// summary of rate-limited log lines when one is due.
func (l *loop) tick(now time.Time) {
	var st knock.Stats
	for _, m := range l.ms {
		l.decide(m.Expire(now))
		st = st.Add(m.Stats())
	}
	l.fleetTick(now)
	l.flush()
	l.met.snapshot(st)
	l.hitLog.summarize(l.log, now, false)
}

// decide logs each decision and queues the grants and revokes it calls for.
// A revoke that follows a queued grant flushes first, so that the order of
// events is the order of kernel operations. An open is logged once its
// grant has landed (settle).
func (l *loop) decide(ds []knock.Decision) {
	for i := range ds {
		d := &ds[i]
		if d.Kind != knock.Open {
			l.logDecision(d)
		}
		l.met.decision(d)
		switch d.Kind {
		case knock.Open:
			q := queued{d: *d, readAt: l.hitAt}
			switch d.Door.Kind() {
			case policy.KindOneTime:
				if len(d.Door.OneTime) > 0 {
					seq := d.Door.OneTime[0]
					q.oneTime = &seq
				}
				if !l.useOneTime(d) {
					continue
				}
			case policy.KindTOTP:
				l.burnsDirty = true
				q.burn = &knock.Burn{Door: d.Door.Name, Client: d.Client, Counter: d.Counter}
			case policy.KindStatic, policy.KindSPA: // nothing used up
			}
			q.hook = l.hookFor("open", d.Door, d.Door.OnOpen, d.Src.String())
			g := knockGrant(d)
			var burn []string
			switch {
			case q.burn != nil:
				burn = []string{fleet.TOTPBurn(q.burn.Client, q.burn.Counter)}
			case q.oneTime != nil:
				burn = []string{fleet.OneTimeBurn(q.oneTime.Key)}
			}
			q.pub = l.fleetPubFor(d.Door, g.Src, g.Ports, g.TTL, burn...)
			l.queue(g, q)
		case knock.Close:
			if len(l.grants) > 0 {
				l.flush()
			}
			// A close sequence takes the door's knocked grants, never its
			// manual ones (sesame grant) nor another door's.
			l.revokes = append(l.revokes, nft.Revoke{Src: d.Src, Door: d.Door.Name, Ports: d.Door.Open, Forward: len(d.Door.Forward) > 0})
			l.closing = append(l.closing, l.hookFor("close", d.Door, d.Door.OnClose, d.Src.String()))
			l.fleetPublishClose(d.Door, d.Src)
		}
	}
}

// knockGrant is the grant of a completed knock: pending for confirm_within
// on a door with confirm (the kernel makes it a grant for open_for when the
// knocker's connection is established), else for open_for.
func knockGrant(d *knock.Decision) nft.Grant {
	g := nft.Grant{Src: d.Src, Door: d.Door.Name, Kind: nft.Open, Ports: d.Door.Open, Forward: len(d.Door.Forward) > 0, TTL: d.Door.OpenFor}
	switch d.Door.Kind() {
	case policy.KindStatic:
		if d.Door.Confirm {
			g.Kind, g.TTL = nft.Pending, d.Door.ConfirmWithin
		}
	case policy.KindOneTime, policy.KindTOTP, policy.KindSPA:
		// The knocker proved a secret: nobody can have spoofed it.
	default:
		panic("daemon: no grant for door kind " + d.Door.Kind().String())
	}
	return g
}

// flush applies the queued operations (one transaction, split by Apply
// when the kernel refuses part of it) and retries once what failed for
// another reason than the kernel's refusal. Then settle logs, counts and
// runs hooks per grant and revoke, and gives back the TOTP codes and
// one-time lines of grants that did not land. Nothing here stops the loop.
func (l *loop) flush() {
	if len(l.grants) == 0 && len(l.revokes) == 0 {
		return
	}
	if l.burnsDirty { // before the grant: see saveBurns
		l.saveBurns()
		l.burnsDirty = false
	}
	l.fleetDeadlines()
	start := time.Now()
	err := l.table.Apply(l.grants, l.revokes)
	l.met.applied(time.Since(start))
	if err != nil {
		err = l.retry(err)
	}
	l.settle(err)
	clear(l.grants)
	clear(l.queued)
	clear(l.revokes)
	clear(l.closing)
	l.grants, l.queued, l.revokes, l.closing = l.grants[:0], l.queued[:0], l.revokes[:0], l.closing[:0]
}

// retry applies again, once, the grants and revokes that failed with a
// retryable error, and returns the outcome of the whole batch.
func (l *loop) retry(err error) error {
	var gi, ri []int
	var gs []nft.Grant
	var rs []nft.Revoke
	for i := range l.grants {
		if nft.Retryable(nft.GrantErr(err, i)) {
			gi, gs = append(gi, i), append(gs, l.grants[i])
		}
	}
	for i := range l.revokes {
		if nft.Retryable(nft.RevokeErr(err, i)) {
			ri, rs = append(ri, i), append(rs, l.revokes[i])
		}
	}
	if len(gs)+len(rs) == 0 {
		return err
	}
	l.log.Warn(logevent.ApplyRetry, "err", err, "grants", len(gs), "revokes", len(rs))
	again := l.table.Apply(gs, rs)
	res := &nft.ApplyError{Grants: make([]error, len(l.grants)), Revokes: make([]error, len(l.revokes))}
	for i := range l.grants {
		res.Grants[i] = nft.GrantErr(err, i)
	}
	for i := range l.revokes {
		res.Revokes[i] = nft.RevokeErr(err, i)
	}
	for j, i := range gi {
		res.Grants[i] = nft.GrantErr(again, j)
	}
	for j, i := range ri {
		res.Revokes[i] = nft.RevokeErr(again, j)
	}
	if len(res.Unwrap()) == 0 {
		return nil
	}
	return res
}

// logDecision writes one line per event, as docs/design.md's "Logs" section
// says. Progress (stage, timeout) is debug: a spoofed flood makes one per
// packet. Outcomes (open, close) and resets are info; every line has src.
// Lines whose src proved nothing are rate-limited and say spoofable=true
// (loglimit.go).
func (l *loop) logDecision(d *knock.Decision) {
	level := slog.LevelInfo
	if d.Kind == knock.Stage || d.Kind == knock.Timeout {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	spoof := spoofable(d)
	if spoof && !l.hitLog.allow(d, l.now()) {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("door", d.Door.Name), slog.String("src", d.Src.String()))
	if d.Client != "" {
		attrs = append(attrs, slog.String("client", d.Client))
	}
	if d.Close && d.Kind != knock.Close {
		attrs = append(attrs, slog.String("seq", "close"))
	}
	switch d.Kind {
	case knock.Stage:
		attrs = append(attrs, slog.String("stage", itoa(d.Stage)+"/"+itoa(d.Of)), slog.String("hit", d.Hit.String()))
	case knock.Open:
		attrs = append(attrs, slog.String("ports", policy.FormatPorts(d.Door.Open)), slog.String("for", d.Door.OpenFor.String()))
		if len(d.Door.Forward) > 0 {
			attrs = append(attrs, slog.String("forward", policy.FormatTargets(d.Door.Forward)))
		}
		if d.Door.Confirm && d.Door.Static() { // pending until the knocker connects
			attrs = append(attrs, slog.String("confirm", d.Door.ConfirmWithin.String()))
		}
	case knock.Close:
		attrs = append(attrs, slog.String("ports", policy.FormatPorts(d.Door.Open)))
	case knock.Reset:
		attrs = append(attrs, slog.String("reason", d.Reason.String()), slog.String("hit", d.Hit.String()))
	}
	if spoof {
		attrs = append(attrs, slog.Bool("spoofable", true))
	}
	l.log.LogAttrs(ctx, level, decisionEvent(d.Kind), attrs...)
}

func itoa(n int) string {
	if n >= 0 && n < 10 {
		return string(rune('0' + n))
	}
	return slog.IntValue(n).String()
}

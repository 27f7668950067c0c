package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
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
	m     *knock.Matcher
	tm    *knock.TOTPMatcher // TOTP doors (totp.go)
	p     *policy.Policy     // the policy in force; one-time doors advance in it
	now   func() time.Time
	used  []*policy.Door // one-time doors whose sequence was used in this batch
	// burnsDirty: a TOTP sequence was burned in this batch (totpburn.go)
	burnsDirty bool
	met        *metrics // nil: not counted

	grants  []nft.Grant
	revokes []nft.Revoke
	// readAt[i] is when capture read the hit that earned grants[i], and
	// hitAt that of the hit being observed: a debug line per grant gives
	// the daemon's own share of the knock-to-grant latency.
	readAt []time.Time
	hitAt  time.Time

	hooks   HookSubmitter // nil: hooks are not run
	pending []HookJob     // hooks of the queued grants and revokes

	spa *spaState // nil: no SPA; its out channel feeds spaGrant (spagrant.go)

	hitLog hitLog // rate-limits the lines any packet can cause (loglimit.go)
}

func newLoop(log *slog.Logger, table Granter, p *policy.Policy, cfg knock.Config) *loop {
	return &loop{
		log:   log,
		table: table,
		m:     knock.New(p, cfg),
		tm:    knock.NewTOTP(p, cfg),
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
		case <-tick:
			now := l.now()
			l.decide(l.m.Expire(now))
			l.decide(l.tm.Expire(now))
			l.flush()
			l.met.snapshot(l.m.Stats())
			l.hitLog.summarize(l.log, now, false)
		case <-hup:
			if p := reload(); p != nil {
				l.m.Update(p)
				l.tm.Update(p)
				l.p = p
			}
		}
	}
}

func (l *loop) observe(h knock.Hit) {
	l.hitAt = h.At
	now := l.now()
	l.decide(l.m.Observe(h, now))
	l.decide(l.tm.Observe(h, now))
	l.advanceOneTime()
}

// decide logs each decision and queues the grants and revokes it calls for.
// A revoke that follows a queued grant flushes first, so that the order of
// events is the order of kernel operations.
func (l *loop) decide(ds []knock.Decision) {
	for i := range ds {
		d := &ds[i]
		l.logDecision(d)
		l.met.decision(d)
		switch d.Kind {
		case knock.Open:
			if d.Door.OneTimeFile != "" && !l.useOneTime(d) {
				continue
			}
			if d.Door.TOTP != nil {
				l.burnsDirty = true
			}
			l.grants = append(l.grants, nft.Grant{Src: d.Src, Door: d.Door.Name, Ports: d.Door.Open, TTL: d.Door.OpenFor})
			l.readAt = append(l.readAt, l.hitAt)
			l.queueHook("open", d.Door, d.Door.OnOpen, d.Src.String())
		case knock.Close:
			if len(l.grants) > 0 {
				l.flush()
			}
			l.revokes = append(l.revokes, nft.Revoke{Src: d.Src, Ports: d.Door.Open})
			l.queueHook("close", d.Door, d.Door.OnClose, d.Src.String())
		}
	}
}

// flush applies the queued operations in one transaction, retrying once.
// A failure is logged with every src and door it concerns and never stops
// the loop.
func (l *loop) flush() {
	if len(l.grants) == 0 && len(l.revokes) == 0 {
		return
	}
	if l.burnsDirty { // before the grant: see saveBurns
		l.saveBurns()
		l.burnsDirty = false
	}
	start := time.Now()
	err := l.table.Apply(l.grants, l.revokes)
	l.met.applied(time.Since(start))
	if err != nil {
		l.log.Warn("nftables update failed, retrying", "err", err)
		err = l.table.Apply(l.grants, l.revokes)
	}
	if errors.Is(err, unix.ENFILE) {
		l.log.Error("grant set full", "size", nft.GrantSetSize, "grants", len(l.grants),
			"note", "every element of a grant set is live: these grants fail until some expire; a flood of completed knocks on a static sequence known to others does this (README: Choosing a door)")
	}
	if err != nil {
		l.met.failed(len(l.grants) + len(l.revokes))
		for _, g := range l.grants {
			l.log.Error("grant failed", "door", g.Door, "src", g.Src, "ports", policy.FormatPorts(g.Ports), "err", err)
		}
		for _, r := range l.revokes {
			l.log.Error("revoke failed", "src", r.Src, "ports", policy.FormatPorts(r.Ports), "err", err)
		}
	}
	if err == nil {
		l.logApplied()
	}
	l.dispatchHooks(err == nil)
	l.readAt = l.readAt[:0]
	clear(l.grants)
	clear(l.revokes)
	l.grants, l.revokes = l.grants[:0], l.revokes[:0]
}

// logDecision writes one line per event, as DESIGN.md's "Logs" section
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
	case knock.Close:
		attrs = append(attrs, slog.String("ports", policy.FormatPorts(d.Door.Open)))
	case knock.Reset:
		attrs = append(attrs, slog.String("reason", d.Reason.String()), slog.String("hit", d.Hit.String()))
	}
	if spoof {
		attrs = append(attrs, slog.Bool("spoofable", true))
	}
	l.log.LogAttrs(ctx, level, d.Kind.String(), attrs...)
}

// logApplied writes, at debug level, one grant-applied line per grant with
// the time from capture reading its last knock to the nftables transaction
// returning, in microseconds.
func (l *loop) logApplied() {
	ctx := context.Background()
	if !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	done := time.Now()
	for i, g := range l.grants {
		if i >= len(l.readAt) || l.readAt[i].IsZero() {
			continue
		}
		l.log.LogAttrs(ctx, slog.LevelDebug, "grant-applied", slog.String("door", g.Door),
			slog.String("src", g.Src.String()), slog.Int64("us", done.Sub(l.readAt[i]).Microseconds()))
	}
}

func itoa(n int) string {
	if n >= 0 && n < 10 {
		return string(rune('0' + n))
	}
	return slog.IntValue(n).String()
}

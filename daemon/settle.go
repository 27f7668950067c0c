package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/onetime"
	"github.com/sesame-knock/sesame/policy"
)

// queued is what the loop does once it knows whether a queued grant
// landed: log and count the open and run on_open, or log the failure and
// give back what the knock used up.
type queued struct {
	d       knock.Decision     // a knock's Open decision, logged as msg=open when the grant lands
	spa     []any              // or an SPA grant's open line
	readAt  time.Time          // when capture read the hit that earned it
	hook    *HookJob           // on_open, or nil
	burn    *knock.Burn        // a TOTP grant: the burn to undo if it fails
	oneTime *policy.OneTimeSeq // a one-time grant: the line to mark unused if it fails
	pub     *fleetPub          // a local grant of a door with fleet_groups: what to publish once it landed
	fleet   *fleetQueued       // or a fleet grant: its record
}

// queue adds a grant to the batch.
func (l *loop) queue(g nft.Grant, q queued) {
	l.grants = append(l.grants, g)
	l.queued = append(l.queued, q)
}

// settle acts on the outcome of a batch (err as Apply or retry returned
// it): per revoke and per grant, a log line, the counters and the hook.
// A grant that did not land logs `grant failed` with its reason, and gives
// back its TOTP code (saved again) and one-time line: they were persisted
// as used before the transaction, so a crash between the two loses the
// grant but never allows a reuse; a crash after a failed transaction and
// before the give-back leaves them used, the same.
func (l *loop) settle(err error) {
	for i, r := range l.revokes {
		e := nft.RevokeErr(err, i)
		if e != nil {
			l.met.failed(1)
			l.log.Error(logevent.RevokeFailed, "door", r.Door, "src", r.Src, "ports", policy.FormatPorts(r.Ports), "err", e)
		}
		l.runHook(l.closing[i], e == nil)
	}
	var unburned bool
	var undo []int
	full := map[string]int{}
	for i, g := range l.grants {
		q := &l.queued[i]
		e := nft.GrantErr(err, i)
		if e == nil {
			l.landed(g, q)
			continue
		}
		l.met.failed(1)
		l.log.Error(logevent.GrantFailed, "door", g.Door, "src", g.Src, "ports", policy.FormatPorts(g.Ports), "reason", failReason(e), "err", e)
		if errors.Is(e, unix.ENFILE) {
			full[g.Door]++
		}
		if q.burn != nil {
			l.tm.Unburn(*q.burn)
			unburned = true
		}
		if q.oneTime != nil {
			undo = append(undo, i)
		}
		l.runHook(q.hook, false)
	}
	if unburned {
		l.saveBurns()
	}
	// Latest first: a door that used two lines in one batch gets them back
	// in file order.
	for _, i := range slices.Backward(undo) {
		l.undoOneTime(l.queued[i].d.Door, *l.queued[i].oneTime, l.grants[i].Src)
	}
	for door, n := range full {
		max := 0
		if d := l.p.Door(door); d != nil {
			max = d.MaxGrants
		}
		l.log.Error(logevent.GrantSetFull, "door", door, "max_grants", max, "grants", n,
			"note", "every element of the door's set is live: its new grants fail until some expire; other doors and manual grants are not affected. A flood of completed knocks on a static sequence known to others does this without confirm (README: Choosing a door)")
	}
}

// failReason names why a grant did not land, for the log.
func failReason(err error) string {
	switch {
	case errors.Is(err, unix.ENFILE):
		return "set-full"
	case errors.Is(err, unix.ENOENT):
		return "no-set"
	case nft.Retryable(err):
		return "netlink"
	}
	return "refused"
}

// landed logs, counts and hooks a grant that is in the kernel.
func (l *loop) landed(g nft.Grant, q *queued) {
	if q.fleet != nil {
		l.fleetLanded(g, q.fleet)
	} else {
		l.fleetLocal(g, q.pub)
	}
	switch {
	case q.fleet != nil: // logged by fleetLanded
	case q.spa != nil:
		l.log.Info(logevent.Open, q.spa...)
	default:
		l.logDecision(&q.d)
	}
	l.met.opened()
	if !q.readAt.IsZero() {
		ctx := context.Background()
		if l.log.Enabled(ctx, slog.LevelDebug) {
			l.log.LogAttrs(ctx, slog.LevelDebug, logevent.GrantApplied, slog.String("door", g.Door),
				slog.String("src", g.Src.String()), slog.Int64("us", time.Since(q.readAt).Microseconds()))
		}
	}
	l.runHook(q.hook, true)
}

// undoOneTime gives back the one-time sequence seq of door, whose grant did
// not land: its line is marked unused again and it is the door's next
// sequence. If the state file cannot be written the sequence stays used
// (no reuse): the client knocks with the next one.
func (l *loop) undoOneTime(door *policy.Door, seq policy.OneTimeSeq, src any) {
	if err := onetime.Unmark(door.OneTimeUsed, seq.Key); err != nil {
		l.log.Error(logevent.OneTimeUnmarkFailed, "door", door.Name, "src", src, "file", door.OneTimeFile, "line", seq.Line, "state", door.OneTimeUsed, "err", err,
			"note", "the sequence stays used though its grant failed: knock with the next one")
		return
	}
	door.OneTime = append([]policy.OneTimeSeq{seq}, door.OneTime...)
	door.Sequence = seq.Steps
	l.m.Update(l.p)
	l.log.Warn(logevent.OneTimeRestored, "door", door.Name, "src", src, "file", door.OneTimeFile, "line", seq.Line,
		"note", "its grant failed: the sequence opens again")
}

package daemon

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
)

// Lines that any packet can make the loop write are rate-limited, so that a
// spoofed flood neither floods the log nor pushes journald's rate limit
// onto the lines that matter: stage, reset and timeout lines of every
// door, and the open and close lines of static doors, whose sequence
// proves nothing about the source. Each kind has its own budget of
// hitLogsPerSecond lines (a flood of resets cannot silence opens); lines
// past it are counted per door and kind (resets per reason), and a
// log-summary line per door says how many were suppressed, at most every
// summaryEvery. The opens of TOTP, one-time and SPA doors are never
// limited: their knock was authenticated and cannot be replayed.
//
//	msg=log-summary door=ssh suppressed=39960 stage=19980 reset.other-port=19980 every=5s
//
// Every line of the first group carries spoofable=true: its src is the
// packet's source address, which anyone can forge, so a fail2ban filter
// must not ban on it.

// hitLogsPerSecond bounds each kind of limited line (see above).
const hitLogsPerSecond = 20

// summaryEvery is the shortest time between two log-summary lines.
const summaryEvery = 5 * time.Second

// hitLog is the loop's limiter of per-hit lines; the zero value is ready.
// Only the loop goroutine uses it (the limiters' own locks are never
// contended).
type hitLog struct {
	progress refusalLimiter // stage, reset, timeout
	outcome  refusalLimiter // open, close of static doors
	counts   map[hitLogKey]uint64
	since    time.Time // the last summary, or the first count before any
}

type hitLogKey struct {
	door   string
	kind   knock.Kind
	reason knock.Reason
}

// spoofable reports whether d's line names a source that proved nothing:
// every stage, reset and timeout, and the open and close of a static door.
func spoofable(d *knock.Decision) bool {
	switch d.Kind {
	case knock.Open, knock.Close:
		return d.Door.Static()
	}
	return true
}

// allow reports whether the line of spoofable decision d may be written
// now; if not, it is counted for the next summary.
func (h *hitLog) allow(d *knock.Decision, now time.Time) bool {
	if h.counts == nil {
		h.progress.perSecond, h.outcome.perSecond = hitLogsPerSecond, hitLogsPerSecond
		h.counts = map[hitLogKey]uint64{}
	}
	lim := &h.progress
	if d.Kind == knock.Open || d.Kind == knock.Close {
		lim = &h.outcome
	}
	if _, ok := lim.allow(now); ok {
		return true
	}
	if h.since.IsZero() {
		h.since = now
	}
	h.counts[hitLogKey{d.Door.Name, d.Kind, d.Reason}]++
	return false
}

// summarize writes one log-summary line per door with suppressed lines, if
// summaryEvery has passed since the last summary or force is set (the
// daemon stops), and starts counting afresh.
func (h *hitLog) summarize(log *slog.Logger, now time.Time, force bool) {
	if len(h.counts) == 0 || (!force && now.Sub(h.since) < summaryEvery) {
		return
	}
	keys := make([]hitLogKey, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hitLogKey) int {
		if c := strings.Compare(a.door, b.door); c != 0 {
			return c
		}
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		return int(a.reason) - int(b.reason)
	})
	for i := 0; i < len(keys); {
		door := keys[i].door
		var total uint64
		var kinds, resets []slog.Attr
		for ; i < len(keys) && keys[i].door == door; i++ {
			k, n := keys[i], h.counts[keys[i]]
			total += n
			if k.kind == knock.Reset {
				resets = append(resets, slog.Uint64(k.reason.String(), n))
				continue
			}
			kinds = append(kinds, slog.Uint64(k.kind.String(), n))
		}
		attrs := append([]slog.Attr{slog.String("door", door), slog.Uint64("suppressed", total)}, kinds...)
		if len(resets) > 0 {
			attrs = append(attrs, slog.Attr{Key: knock.Reset.String(), Value: slog.GroupValue(resets...)})
		}
		attrs = append(attrs, slog.String("every", summaryEvery.String()))
		log.LogAttrs(context.Background(), slog.LevelInfo, logevent.LogSummary, attrs...)
	}
	clear(h.counts)
	h.since = now
}

package daemon

import (
	"errors"
	"slices"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/onetime"
)

// lowOneTime is the number of unused one-time sequences under which each
// use logs a warning.
const lowOneTime = 10

// useOneTime records the sequence that just opened one-time door d.Door as
// used in the door's state file (in state_dir; the sequence file itself is
// only read), before the grant is queued: a crash between the two can lose
// a grant but never allow a reuse. It reports whether to grant. The
// rewrite (temp file, fsync, rename, fsync of the directory) happens on
// the loop goroutine, but only for a completed knock, never per packet.
func (l *loop) useOneTime(d *knock.Decision) bool {
	door := d.Door
	if len(door.OneTime) == 0 || slices.Contains(l.used, door) {
		// Already used in this batch: the matcher saw the old sequence.
		l.log.Warn(logevent.OneTimeRefused, "door", door.Name, "src", d.Src.String(), "reason", "sequence already used", "spoofable", true)
		return false
	}
	seq := door.OneTime[0]
	err := onetime.MarkUsed(door.OneTimeUsed, seq.Key)
	if errors.Is(err, onetime.ErrUsed) {
		// Recorded since the policy was read: refuse it, move on.
		l.log.Warn(logevent.OneTimeRefused, "door", door.Name, "src", d.Src.String(), "line", seq.Line, "reason", "sequence already used", "spoofable", true)
		l.used = append(l.used, door)
		return false
	}
	if err != nil {
		l.log.Error(logevent.OneTimeMarkFailed, "door", door.Name, "src", d.Src.String(), "file", door.OneTimeFile, "line", seq.Line, "state", door.OneTimeUsed, "err", err, "note", "no grant: a sequence is granted only once recorded used; fix state_dir and reload (SIGHUP)")
		return false
	}
	left := len(door.OneTime) - 1
	l.log.Info(logevent.OneTimeUsed, "door", door.Name, "src", d.Src.String(), "file", door.OneTimeFile, "line", seq.Line, "left", left)
	switch {
	case left == 0:
		l.log.Warn(logevent.OneTimeExhausted, "door", door.Name, "file", door.OneTimeFile, "note", "the door refuses every knock until sequences are added and the config reloaded (SIGHUP)")
	case left < lowOneTime:
		l.log.Warn(logevent.OneTimeLow, "door", door.Name, "file", door.OneTimeFile, "left", left)
	}
	l.used = append(l.used, door)
	return true
}

// advanceOneTime moves each one-time door used by the last hit on to its
// next sequence (none when exhausted) and tells the matcher, which keeps
// the progress of every other door.
func (l *loop) advanceOneTime() {
	if len(l.used) == 0 {
		return
	}
	for _, door := range l.used {
		door.OneTime = door.OneTime[1:]
		door.Sequence = nil
		if len(door.OneTime) > 0 {
			door.Sequence = door.OneTime[0].Steps
		}
	}
	clear(l.used)
	l.used = l.used[:0]
	l.m.Update(l.p)
}

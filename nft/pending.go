package nft

import "time"

// gcGrace is how long after its timeout an element may still count toward
// a set's size: the kernel removes expired elements in a periodic garbage
// collection (every second by default), not at the instant they expire.
const gcGrace = 2 * time.Second

// fifo tracks the elements that sesame put in one pending set, oldest
// first, so that Apply can delete the oldest before the set would be full:
// under a flood of spoofed knocks, the pending set churns and a real
// knocker's entry lives about size/rate seconds, while the door's open and
// manual sets and other doors are untouched. Elements it does not know of
// (written before a restart) are handled by flushing the set when the
// kernel still says it is full.
type fifo struct {
	q    []fifoEntry // oldest first from head; stale entries are skipped
	head int
	live map[string]uint64 // key -> seq of its current entry
	seq  uint64
}

type fifoEntry struct {
	key     string
	seq     uint64
	expires time.Time
}

func newFIFO() *fifo { return &fifo{live: map[string]uint64{}} }

// current reports whether e is its key's live entry.
func (f *fifo) current(e *fifoEntry) bool { return f.live[e.key] == e.seq }

// prune drops entries whose element the kernel has expired (and collected)
// by now, and stale ones at the head.
func (f *fifo) prune(now time.Time) {
	for f.head < len(f.q) {
		e := &f.q[f.head]
		if f.current(e) {
			if now.Before(e.expires.Add(gcGrace)) {
				break
			}
			delete(f.live, e.key)
		}
		*e = fifoEntry{}
		f.head++
	}
	if f.head > 1024 && f.head > len(f.q)/2 {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
}

// len is how many tracked elements may be in the set.
func (f *fifo) len() int { return len(f.live) }

// has reports whether key is tracked.
func (f *fifo) has(key string) bool { _, ok := f.live[key]; return ok }

// oldest returns up to n tracked keys, oldest first, leaving out skip's.
func (f *fifo) oldest(n int, skip map[string]bool) []string {
	var out []string
	for i := f.head; i < len(f.q) && len(out) < n; i++ {
		e := &f.q[i]
		if f.current(e) && !skip[e.key] {
			out = append(out, e.key)
		}
	}
	return out
}

// forget stops tracking key (deleted from the set).
func (f *fifo) forget(key string) { delete(f.live, key) }

// push tracks key, added (or refreshed) now, as the newest element.
func (f *fifo) push(key string, expires time.Time) {
	f.seq++
	f.live[key] = f.seq
	f.q = append(f.q, fifoEntry{key: key, seq: f.seq, expires: expires})
}

// reset forgets everything (the set was flushed or created anew).
func (f *fifo) reset() {
	clear(f.q)
	f.q, f.head = f.q[:0], 0
	clear(f.live)
}

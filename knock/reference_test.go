package knock

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// ref is the reference matcher of the fuzz test: the matching rules written
// as plainly as possible, with an unbounded map and no lists.
type ref struct {
	p     *policy.Policy
	ms    []refMachine // same order as the Matcher's: door order, open then close
	state map[refKey]*refEntry
	seq   uint64 // orders (re)starts, for Expire's output order
}

type refMachine struct {
	door  *policy.Door
	steps []policy.PortProto
	close bool
}

type refKey struct {
	m   int
	src netip.Addr
}

type refEntry struct {
	stage int
	first time.Time
	seq   uint64
}

func newRef(p *policy.Policy) *ref {
	r := &ref{p: p, state: map[refKey]*refEntry{}}
	for i := range p.Doors {
		d := &p.Doors[i]
		if len(d.Sequence) > 0 {
			r.ms = append(r.ms, refMachine{d, d.Sequence, false})
		}
		if len(d.CloseSequence) > 0 {
			r.ms = append(r.ms, refMachine{d, d.CloseSequence, true})
		}
	}
	return r
}

func (r *ref) decision(k Kind, mi int, src netip.Addr, stage int, reason Reason, hit policy.PortProto) Decision {
	m := r.ms[mi]
	return Decision{Kind: k, Door: m.door, Src: src, Close: m.close, Stage: stage, Of: len(m.steps), Reason: reason, Hit: hit}
}

func (r *ref) start(k refKey, now time.Time) {
	r.seq++
	r.state[k] = &refEntry{stage: 1, first: now, seq: r.seq}
}

// eviction is one entry the real matcher evicted while it handled machine at.
type eviction struct {
	at  int
	key refKey
}

// observe handles one hit. The entries in evicted are forgotten, without a
// decision, after machine at has handled the hit (before the next machine
// sees it), as the real matcher did.
func (r *ref) observe(h Hit, now time.Time, evicted []eviction) []Decision {
	var out []Decision
	src := h.Src.Unmap().WithZone("")
	step := h.Step()
	forget := func(at int) {
		for _, e := range evicted {
			if e.at == at {
				delete(r.state, e.key)
			}
		}
	}
	defer forget(len(r.ms) - 1)
	for mi, m := range r.ms {
		forget(mi - 1)
		if !slices.ContainsFunc(m.steps, func(s policy.PortProto) bool { return s.Proto == h.Proto }) {
			continue // a protocol the sequence does not use
		}
		if h.Proto == policy.TCP && !m.door.TCPFlags.Match(h.Flags) {
			continue
		}
		k := refKey{mi, src}
		e := r.state[k]
		if e != nil && now.Sub(e.first) > m.door.SeqTimeout {
			out = append(out, r.decision(Timeout, mi, src, e.stage, NoReason, step))
			delete(r.state, k)
			e = nil
		}
		done := Open
		if m.close {
			done = Close
		}
		switch {
		case e != nil && step == m.steps[e.stage]:
			e.stage++
			if e.stage == len(m.steps) {
				out = append(out, r.decision(done, mi, src, e.stage, NoReason, step))
				delete(r.state, k)
			} else {
				out = append(out, r.decision(Stage, mi, src, e.stage, NoReason, step))
			}
		case e != nil && step == m.steps[e.stage-1]:
		case step == m.steps[0]:
			if len(m.steps) == 1 {
				out = append(out, r.decision(done, mi, src, 1, NoReason, step))
				continue
			}
			r.start(k, now)
			out = append(out, r.decision(Stage, mi, src, 1, NoReason, step))
		case e != nil:
			reason := OtherPort
			if slices.Contains(r.p.KnockPorts(), step) {
				reason = WrongPort
			}
			out = append(out, r.decision(Reset, mi, src, e.stage, reason, step))
			delete(r.state, k)
		}
	}
	return out
}

// expire drops every late entry: machine by machine, in order of (re)start.
func (r *ref) expire(now time.Time) []Decision {
	var out []Decision
	for mi, m := range r.ms {
		var late []refKey
		for k, e := range r.state {
			if k.m == mi && now.Sub(e.first) > m.door.SeqTimeout {
				late = append(late, k)
			}
		}
		slices.SortFunc(late, func(a, b refKey) int { return cmp.Compare(r.state[a].seq, r.state[b].seq) })
		for _, k := range late {
			out = append(out, r.decision(Timeout, mi, k.src, r.state[k].stage, NoReason, policy.PortProto{}))
			delete(r.state, k)
		}
	}
	return out
}

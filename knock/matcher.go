package knock

import (
	"net/netip"
	"slices"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// DefaultMaxEntries is the cap on tracked (sequence, source) entries when
// Config.MaxEntries is 0.
const DefaultMaxEntries = 65536

// Config tunes a Matcher.
type Config struct {
	// MaxEntries caps the (sequence, source) entries tracked at once; 0
	// means DefaultMaxEntries. The memory is allocated by New.
	MaxEntries int
}

// machine is one sequence of one door: its open sequence or its close
// sequence.
type machine struct {
	door    *policy.Door
	steps   []policy.PortProto
	close   bool
	timeout time.Duration
	flags   policy.TCPFlags
	protos  protoSet // the protocols of its steps
}

// counts reports whether h can change m's progress (rule 1): its protocol
// is one that m's steps use and, for TCP, its flags pass the door's
// filter. A hit that counts and is not the expected step, a repeat or the
// first step resets, whatever port it went to (rule 6).
func (m *machine) counts(h *Hit) bool {
	return m.protos.has(h.Proto) && (h.Proto != policy.TCP || m.flags.Match(h.Flags))
}

// same reports whether in-progress state of m is still valid under o.
func (m *machine) same(o *machine) bool {
	return m.door.Name == o.door.Name && m.close == o.close &&
		m.timeout == o.timeout && m.flags == o.flags &&
		slices.Equal(m.steps, o.steps)
}

// Matcher follows every source through every door's sequences. It is not
// safe for concurrent use: the daemon owns it from one goroutine.
type Matcher struct {
	ms    []machine
	knock portSet
	t     table
	out   []Decision
	stats Stats
}

// New returns a Matcher for p (nil means no doors) that tracks at most
// cfg.MaxEntries entries.
func New(p *policy.Policy, cfg Config) *Matcher {
	size := cfg.MaxEntries
	if size <= 0 {
		size = DefaultMaxEntries
	}
	m := &Matcher{}
	m.setPolicy(p)
	m.t = newTable(size, len(m.ms))
	return m
}

// setPolicy builds the machines and the knock port set for p.
func (m *Matcher) setPolicy(p *policy.Policy) {
	m.ms = nil
	m.knock = portSet{}
	if p == nil {
		return
	}
	for i := range p.Doors {
		d := &p.Doors[i]
		for _, c := range []struct {
			steps []policy.PortProto
			close bool
		}{{d.Sequence, false}, {d.CloseSequence, true}} {
			if len(c.steps) == 0 {
				continue
			}
			mc := machine{door: d, steps: c.steps, close: c.close, timeout: d.SeqTimeout, flags: d.TCPFlags}
			for _, s := range c.steps {
				m.knock.add(s)
				mc.protos.add(s.Proto)
			}
			m.ms = append(m.ms, mc)
		}
	}
	// Each machine emits at most two decisions per hit (Timeout, then
	// another): with this capacity Observe never grows the buffer.
	m.out = make([]Decision, 0, max(16, 2*len(m.ms)))
}

// Update switches to policy p. A source's progress through a sequence is
// kept when the sequence is unchanged (door name, steps, seq_timeout and
// tcp_flags alike); progress through any other sequence is dropped silently.
func (m *Matcher) Update(p *policy.Policy) {
	old := m.ms
	m.setPolicy(p)
	newIdx := make([]int32, len(old))
	taken := make([]bool, len(m.ms))
	for o := range old {
		newIdx[o] = none
		for n := range m.ms {
			if !taken[n] && old[o].same(&m.ms[n]) {
				newIdx[o], taken[n] = int32(n), true
				break
			}
		}
	}
	m.t.remap(newIdx, len(m.ms))
}

// Len returns the number of (sequence, source) entries tracked now.
func (m *Matcher) Len() int { return m.t.len() }

// Stats returns the counters.
func (m *Matcher) Stats() Stats {
	s := m.stats
	s.Tracked = uint64(m.t.len())
	s.Evicted = m.t.evicted
	return s
}

// Observe feeds one hit, received at now, to every sequence and returns
// what it concluded, in door order (a door's open sequence before its close
// sequence). The slice is reused: it is valid until the next call to
// Observe, Expire or Update. now should not go backwards between calls.
func (m *Matcher) Observe(h Hit, now time.Time) []Decision {
	m.out = m.out[:0]
	src := h.Src.Unmap().WithZone("")
	if !src.IsValid() {
		return m.out
	}
	step := h.Step()
	for mi := range m.ms {
		mc := &m.ms[mi]
		if !mc.counts(&h) {
			continue // rule 1: not a knock for this sequence
		}
		isFirst := step == mc.steps[0]
		i := m.t.get(int32(mi), src)
		if i != none && now.Sub(m.t.e[i].first) > mc.timeout {
			// Rule 2: too late; start over as if there were no entry.
			m.emit(Timeout, mc, src, int(m.t.e[i].stage), NoReason, step)
			m.stats.Expired++
			m.t.drop(i)
			i = none
		}
		if i == none {
			if !isFirst {
				continue // rule 7
			}
			if len(mc.steps) == 1 {
				m.complete(mc, src, step)
				continue
			}
			m.t.add(int32(mi), src, now) // rule 5, fresh
			m.emit(Stage, mc, src, 1, NoReason, step)
			continue
		}
		e := &m.t.e[i]
		switch {
		case step == mc.steps[e.stage]: // rule 3
			if int(e.stage)+1 == len(mc.steps) {
				m.t.drop(i)
				m.complete(mc, src, step)
				break
			}
			m.t.advance(i)
			m.emit(Stage, mc, src, int(e.stage), NoReason, step)
		case step == mc.steps[e.stage-1]: // rule 4: a repeat, ignored
		case isFirst: // rule 5, a restart
			m.t.restart(i, now)
			m.emit(Stage, mc, src, 1, NoReason, step)
		default: // rule 6
			r := OtherPort
			if m.knock.has(step) {
				r = WrongPort
			}
			m.emit(Reset, mc, src, int(e.stage), r, step)
			m.stats.Resets++
			m.t.drop(i)
		}
	}
	return m.out
}

// complete emits the Open or Close of a sequence that just completed.
func (m *Matcher) complete(mc *machine, src netip.Addr, step policy.PortProto) {
	k := Open
	if mc.close {
		k = Close
		m.stats.Closes++
	} else {
		m.stats.Opens++
	}
	m.emit(k, mc, src, len(mc.steps), NoReason, step)
}

// Expire drops every entry whose seq_timeout has passed at now and returns a
// Timeout decision for each (with a zero Hit). The daemon calls it about
// once a second; Observe checks timeouts by itself, so a late sweep never
// changes what a hit does. Each machine's entries are listed in order of
// their first hit, so the sweep stops at the first entry of each machine
// that is still in time: it is exact and costs O(expired + sequences). The
// slice is reused like Observe's.
func (m *Matcher) Expire(now time.Time) []Decision {
	m.out = m.out[:0]
	for mi := range m.ms {
		mc := &m.ms[mi]
		l := &m.t.mach[mi]
		for i := l.head; i != none && now.Sub(m.t.e[i].first) > mc.timeout; i = l.head {
			e := &m.t.e[i]
			m.emit(Timeout, mc, e.src, int(e.stage), NoReason, policy.PortProto{})
			m.stats.Expired++
			m.t.drop(i)
		}
	}
	return m.out
}

func (m *Matcher) emit(k Kind, mc *machine, src netip.Addr, stage int, r Reason, hit policy.PortProto) {
	m.out = append(m.out, Decision{
		Kind: k, Door: mc.door, Src: src, Close: mc.close,
		Stage: stage, Of: len(mc.steps), Reason: r, Hit: hit,
	})
}

// protoSet is a set of protocols, one bit per protoSlot.
type protoSet uint8

func (s *protoSet) add(p policy.Proto) {
	if k, ok := protoSlot(p); ok {
		*s |= 1 << k
	}
}

func (s protoSet) has(p policy.Proto) bool {
	k, ok := protoSlot(p)
	return ok && s&(1<<k) != 0
}

// portSet is a bitmap of TCP and UDP ports.
type portSet [2][65536 / 64]uint64

func protoSlot(p policy.Proto) (int, bool) {
	switch p {
	case policy.TCP:
		return 0, true
	case policy.UDP:
		return 1, true
	}
	return 0, false
}

func (s *portSet) add(pp policy.PortProto) {
	if k, ok := protoSlot(pp.Proto); ok {
		s[k][pp.Port/64] |= 1 << (pp.Port % 64)
	}
}

func (s *portSet) has(pp policy.PortProto) bool {
	k, ok := protoSlot(pp.Proto)
	return ok && s[k][pp.Port/64]&(1<<(pp.Port%64)) != 0
}

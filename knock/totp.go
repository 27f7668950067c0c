package knock

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

// maxCand bounds the candidate sequences one source follows at once in a
// TOTP door: candidates that share the prefix knocked so far. Two derived
// sequences sharing a first port is rare (about clients·(2·skew+1)/range);
// sharing more is rarer still.
const maxCand = 4

// TOTPMatcher follows sources through the TOTP doors of a policy (doors
// with policy.Door.TOTP set; the Matcher ignores them, having no Sequence).
// It is pure like Matcher: the time is a parameter, and it derives the
// candidate sequences itself when now enters a new step.
//
// For each door it holds, for every client and every counter in
// [now-skew, now+skew], the derived sequence, indexed by (door, first port):
// a hit costs one map lookup and a scan of at most maxCand candidates,
// whatever the number of packets. Per (door, source) state lives in the
// same bounded table as Matcher's (cap Config.MaxEntries, eviction of the
// oldest stage-1 entry first), holding the candidates that the source's
// hits so far agree with. The matching rules are Matcher's (knock/doc.go),
// with "the first step" meaning the first port of any unused candidate: a
// hit of the door's protocol (for TCP, passing its tcp_flags) that is none
// of a candidate's expected next port, its last matched port or a first
// port resets, inside the range (WrongPort) or outside it (OtherPort).
//
// A sequence that opened is burned: for its whole validity window (until
// its counter falls out of [now-skew, now+skew]) it opens nothing, from any
// source; a source that completes it again gets a Reset with Reason
// Replayed. Burned sequences survive Update (keyed by door and client name)
// but not the process.
//
// Allocation: Observe allocates nothing, except when now enters a new step
// of a door (the candidates are re-derived: O(clients·(2·skew+1)) HMACs and
// a new index) and when an Open burns a sequence (one map entry).
type TOTPMatcher struct {
	size   int
	doors  []*policy.Door
	ctr    []uint64 // per door: the counter the candidates were derived for
	built  bool
	t      table // machine index = door index; allocated with the first TOTP door
	cs     [][maxCand]int32
	nc     []uint8
	cands  []candidate
	first  map[firstKey]span
	burned map[burnKey]struct{}
	out    []Decision
	stats  Stats
}

type candidate struct {
	door, client int32
	ctr          uint64
	seq          []uint16
	burned       bool
}

type firstKey struct {
	door int32
	port uint16
}

type span struct{ start, n int32 }

type burnKey struct {
	door, client string
	ctr          uint64
}

// NewTOTP returns a TOTPMatcher for the TOTP doors of p.
func NewTOTP(p *policy.Policy, cfg Config) *TOTPMatcher {
	size := cfg.MaxEntries
	if size <= 0 {
		size = DefaultMaxEntries
	}
	m := &TOTPMatcher{size: size, burned: map[burnKey]struct{}{}, out: make([]Decision, 0, 16)}
	m.Update(p)
	return m
}

// Update switches to policy p. Progress through TOTP doors is dropped;
// burned sequences of doors and clients that keep their names stay burned.
func (m *TOTPMatcher) Update(p *policy.Policy) {
	m.doors = m.doors[:0]
	if p != nil {
		for i := range p.Doors {
			if d := &p.Doors[i]; d.Kind() == policy.KindTOTP && len(d.Clients) > 0 {
				m.doors = append(m.doors, d)
			}
		}
	}
	m.ctr = make([]uint64, len(m.doors))
	m.built = false
	if len(m.doors) > 0 && m.t.e == nil {
		m.t = newTable(m.size, len(m.doors))
		m.cs = make([][maxCand]int32, m.size)
		m.nc = make([]uint8, m.size)
	} else if m.t.e != nil {
		drop := make([]int32, len(m.t.mach))
		for i := range drop {
			drop[i] = none
		}
		m.t.remap(drop, len(m.doors))
	}
	if cap(m.out) < 2*len(m.doors) {
		m.out = make([]Decision, 0, 2*len(m.doors))
	}
}

// Len returns the number of (door, source) entries tracked now.
func (m *TOTPMatcher) Len() int { return m.t.len() }

// Stats returns the counters.
func (m *TOTPMatcher) Stats() Stats {
	s := m.stats
	s.Tracked = uint64(m.t.len())
	s.Evicted = m.t.evicted
	return s
}

// Candidates returns how many unburned sequences door di accepts now (for
// tests and status).
func (m *TOTPMatcher) Candidates(now time.Time) int {
	m.roll(now)
	n := 0
	for i := range m.cands {
		if !m.cands[i].burned {
			n++
		}
	}
	return n
}

// roll re-derives the candidates when now has entered a new step of some
// door.
func (m *TOTPMatcher) roll(now time.Time) {
	stale := !m.built
	for di, d := range m.doors {
		c := totp.Counter(now, d.TOTP.Step)
		if c != m.ctr[di] {
			m.ctr[di], stale = c, true
		}
	}
	if stale {
		m.rebuild()
	}
}

func (m *TOTPMatcher) rebuild() {
	old := m.cands
	var cands []candidate
	for di, d := range m.doors {
		t := d.TOTP
		c := m.ctr[di]
		lo := c - min(c, uint64(t.Skew))
		for ci, cl := range d.Clients {
			for k := lo; k <= c+uint64(t.Skew); k++ {
				_, b := m.burned[burnKey{d.Name, cl.Name, k}]
				cands = append(cands, candidate{door: int32(di), client: int32(ci), ctr: k, burned: b,
					seq: totp.Sequence(cl.Secret, k, t.Lo, t.Hi, t.Length)})
			}
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.door, b.door), cmp.Compare(a.seq[0], b.seq[0]))
	})
	m.first = make(map[firstKey]span, len(cands))
	type ck struct {
		door, client int32
		ctr          uint64
	}
	idx := make(map[ck]int32, len(cands))
	for i, c := range cands {
		k := firstKey{c.door, c.seq[0]}
		s, ok := m.first[k]
		if !ok {
			s.start = int32(i)
		}
		s.n++
		m.first[k] = s
		idx[ck{c.door, c.client, c.ctr}] = int32(i)
	}
	// Forget burns whose window has passed, and burns of doors and clients
	// that are gone.
	live := make(map[string]int, len(m.doors))
	for di, d := range m.doors {
		live[d.Name] = di
	}
	for k := range m.burned {
		di, ok := live[k.door]
		if !ok || k.ctr+uint64(m.doors[di].TOTP.Skew) < m.ctr[di] {
			delete(m.burned, k)
		}
	}
	// Renumber the candidates that sources in progress follow.
	if m.built && m.t.e != nil {
		for mi := range m.t.mach {
			for i := m.t.mach[mi].head; i != none; {
				next := m.t.e[i].link[byMachine].next
				var keep [maxCand]int32
				n := 0
				for _, c := range m.cs[i][:m.nc[i]] {
					o := old[c]
					if ni, ok := idx[ck{o.door, o.client, o.ctr}]; ok {
						keep[n] = ni
						n++
					}
				}
				if n == 0 {
					m.t.drop(i)
				} else {
					m.cs[i], m.nc[i] = keep, uint8(n)
				}
				i = next
			}
		}
	}
	m.cands = cands
	m.built = true
}

// Observe feeds one hit received at now to every TOTP door and returns what
// it concluded, in door order. The slice is reused until the next call.
func (m *TOTPMatcher) Observe(h Hit, now time.Time) []Decision {
	m.out = m.out[:0]
	if len(m.doors) == 0 {
		return m.out
	}
	src := h.Src.Unmap().WithZone("")
	if !src.IsValid() {
		return m.out
	}
	m.roll(now)
	step := h.Step()
	for di, d := range m.doors {
		t := d.TOTP
		if h.Proto != t.Proto || (h.Proto == policy.TCP && !d.TCPFlags.Match(h.Flags)) {
			continue // rule 1: not a knock for this door
		}
		inRange := h.Port >= t.Lo && h.Port <= t.Hi
		i := m.t.get(int32(di), src)
		if i != none && now.Sub(m.t.e[i].first) > d.SeqTimeout {
			m.emit(Timeout, d, src, int(m.t.e[i].stage), NoReason, step, m.client(i))
			m.stats.Expired++
			m.t.drop(i)
			i = none
		}
		if i == none {
			if inRange {
				m.start(int32(di), none, src, h.Port, now, step)
			}
			continue
		}
		e := &m.t.e[i]
		stage := int(e.stage)
		var next [maxCand]int32
		n, burned, repeat := 0, "", false
		if inRange {
			for _, c := range m.cs[i][:m.nc[i]] {
				cd := &m.cands[c]
				switch {
				case cd.seq[stage] == h.Port && cd.burned:
					burned = d.Clients[cd.client].Name
				case cd.seq[stage] == h.Port:
					next[n] = c
					n++
				case cd.seq[stage-1] == h.Port:
					repeat = true
				}
			}
		}
		switch {
		case n > 0 && stage+1 == t.Length:
			win := &m.cands[next[0]]
			m.t.drop(i)
			win.burned = true
			m.burned[burnKey{d.Name, d.Clients[win.client].Name, win.ctr}] = struct{}{}
			m.stats.Opens++
			m.emit(Open, d, src, t.Length, NoReason, step, d.Clients[win.client].Name)
			m.out[len(m.out)-1].Counter = win.ctr
		case n > 0:
			m.cs[i], m.nc[i] = next, uint8(n)
			m.t.advance(i)
			m.emit(Stage, d, src, stage+1, NoReason, step, m.client(i))
		case repeat:
		case inRange && m.start(int32(di), i, src, h.Port, now, step):
		default:
			r := OtherPort
			switch {
			case burned != "":
				r = Replayed
			case inRange:
				r = WrongPort
			}
			m.emit(Reset, d, src, stage, r, step, burned)
			m.stats.Resets++
			m.t.drop(i)
		}
	}
	return m.out
}

// start begins (i == none) or restarts entry i at stage 1 when port is the
// first port of unburned candidates of door di, and reports whether it did.
// A first port that only burned candidates have is reported as a replay.
func (m *TOTPMatcher) start(di, i int32, src netip.Addr, port uint16, now time.Time, step policy.PortProto) bool {
	s, ok := m.first[firstKey{di, port}]
	if !ok {
		return false
	}
	var cs [maxCand]int32
	n := 0
	burned := int32(none)
	for c := s.start; c < s.start+s.n && n < maxCand; c++ {
		if m.cands[c].burned {
			burned = c
			continue
		}
		cs[n] = c
		n++
	}
	d := m.doors[di]
	if n == 0 {
		if i == none {
			m.emit(Reset, d, src, 0, Replayed, step, d.Clients[m.cands[burned].client].Name)
			m.stats.Resets++
		}
		return false
	}
	if i == none {
		i = m.t.add(di, src, now)
	} else {
		m.t.restart(i, now)
	}
	m.cs[i], m.nc[i] = cs, uint8(n)
	m.emit(Stage, d, src, 1, NoReason, step, m.client(i))
	return true
}

// client names the client of entry i when its candidates agree on one.
func (m *TOTPMatcher) client(i int32) string {
	if m.nc[i] == 0 {
		return ""
	}
	c0 := m.cands[m.cs[i][0]].client
	for _, c := range m.cs[i][1:m.nc[i]] {
		if m.cands[c].client != c0 {
			return ""
		}
	}
	return m.doors[m.cands[m.cs[i][0]].door].Clients[c0].Name
}

// Expire drops the entries whose seq_timeout has passed at now, returning a
// Timeout for each, and re-derives the candidates when a step rolled over.
// The daemon calls it about once a second.
func (m *TOTPMatcher) Expire(now time.Time) []Decision {
	m.out = m.out[:0]
	if len(m.doors) == 0 {
		return m.out
	}
	m.roll(now)
	for di, d := range m.doors {
		l := &m.t.mach[di]
		for i := l.head; i != none && now.Sub(m.t.e[i].first) > d.SeqTimeout; i = l.head {
			e := &m.t.e[i]
			m.emit(Timeout, d, e.src, int(e.stage), NoReason, policy.PortProto{}, m.client(i))
			m.stats.Expired++
			m.t.drop(i)
		}
	}
	return m.out
}

func (m *TOTPMatcher) emit(k Kind, d *policy.Door, src netip.Addr, stage int, r Reason, hit policy.PortProto, client string) {
	m.out = append(m.out, Decision{Kind: k, Door: d, Src: src, Stage: stage, Of: d.TOTP.Length, Reason: r, Hit: hit, Client: client})
}

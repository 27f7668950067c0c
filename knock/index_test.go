package knock

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// checkIndex verifies the index of t against its entries: every entry in
// use is found, every slot holds an entry in use under its key's hash, and
// no empty slot lies between a slot's own position and where it sits (the
// invariant that lets a lookup stop at the first empty slot).
func checkIndex(t *testing.T, tb *table) {
	t.Helper()
	x := &tb.idx
	if x.n != tb.len() {
		t.Fatalf("index holds %d, table %d", x.n, tb.len())
	}
	if x.n > 0 && 2*x.n > len(x.s) {
		t.Fatalf("index load %d/%d over one half", x.n, len(x.s))
	}
	mask := uint32(len(x.s) - 1)
	used := 0
	for p, s := range x.s {
		if s.ref == 0 {
			continue
		}
		used++
		e := &tb.e[s.ref-1]
		if e.stage == 0 {
			t.Fatalf("slot %d points at free entry %d", p, s.ref-1)
		}
		if h := x.hash(e.m, e.src); h != s.tag || e.h != s.tag {
			t.Fatalf("slot %d: tag %#x, hash of its entry %#x, cached %#x", p, s.tag, h, e.h)
		}
		for q := s.tag & mask; q != uint32(p); q = (q + 1) & mask {
			if x.s[q].ref == 0 {
				t.Fatalf("slot %d (home %d): empty slot %d on its probe path", p, s.tag&mask, q)
			}
		}
	}
	if used != x.n {
		t.Fatalf("%d slots in use, index counts %d", used, x.n)
	}
	for mi := range tb.mach {
		for i := tb.mach[mi].head; i != none; i = tb.e[i].link[byMachine].next {
			if got := tb.get(int32(mi), tb.e[i].src); got != i {
				t.Fatalf("get(%d, %v) = %d, want %d", mi, tb.e[i].src, got, i)
			}
		}
	}
}

type idxKey struct {
	m   int32
	src netip.Addr
}

// TestIndexRandomized drives a table through random adds (with evictions),
// drops and lookups against a Go map, with hashes narrowed to a few bits so
// that runs are long and collide, and checks the index after each step.
func TestIndexRandomized(t *testing.T) {
	for _, c := range []struct {
		hashMask uint32
		size     int
	}{{0, 40}, {3, 40}, {0x1f, 100}, {0xff, 300}, {^uint32(0), 300}} {
		t.Run(fmt.Sprintf("mask=%#x,size=%d", c.hashMask, c.size), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c.hashMask), uint64(c.size)))
			const machines = 3
			tb := newTable(c.size, machines)
			tb.idx.hashMask = c.hashMask
			ref := map[idxKey]int32{}
			tb.onEvict = func(victim int32, src netip.Addr, _ int32) {
				if _, ok := ref[idxKey{victim, src}]; !ok {
					t.Fatalf("evicted %d %v, not in the reference", victim, src)
				}
				delete(ref, idxKey{victim, src})
			}
			// Sources from a pool about twice the table, IPv4 and IPv6.
			pool := make([]netip.Addr, 2*c.size)
			for i := range pool {
				if i%2 == 0 {
					pool[i] = spoofed(i)
				} else {
					pool[i] = src6n(i)
				}
			}
			now := t0
			for step := range 20000 {
				now = now.Add(time.Millisecond)
				k := idxKey{int32(rng.IntN(machines)), pool[rng.IntN(len(pool))]}
				got := tb.get(k.m, k.src)
				want, ok := ref[k]
				if !ok {
					want = none
				}
				if got != want {
					t.Fatalf("step %d: get(%v) = %d, want %d", step, k, got, want)
				}
				switch {
				case got == none && rng.IntN(3) > 0:
					ref[k] = tb.add(k.m, k.src, now)
				case got != none && rng.IntN(2) == 0:
					tb.drop(got)
					delete(ref, k)
				case got != none:
					tb.advance(got)
				}
				if len(ref) != tb.len() {
					t.Fatalf("step %d: table holds %d, reference %d", step, tb.len(), len(ref))
				}
				if step%97 == 0 || c.size <= 40 {
					checkIndex(t, &tb)
				}
			}
			checkIndex(t, &tb)
			if tb.evicted == 0 {
				t.Errorf("no eviction in the run")
			}
		})
	}
}

// TestIndexAllCollide puts every key on one slot: lookups, deletions from
// the middle of the run and reinsertions still find exactly the right
// entries, and IPv4 and IPv6 sources and machines are told apart by the
// entry comparison alone.
func TestIndexAllCollide(t *testing.T) {
	tb := newTable(64, 2)
	tb.idx.hashMask = 0
	var srcs []netip.Addr
	for i := range 16 {
		srcs = append(srcs, spoofed(i), src6n(i))
	}
	for _, s := range srcs {
		for m := range int32(2) {
			if tb.get(m, s) != none {
				t.Fatalf("get(%d, %v) found an entry before add", m, s)
			}
			tb.add(m, s, t0)
		}
	}
	checkIndex(t, &tb)
	// Drop every third entry, in the order the run holds them.
	for i, s := range srcs {
		if i%3 == 0 {
			tb.drop(tb.get(1, s))
		}
	}
	checkIndex(t, &tb)
	for i, s := range srcs {
		if got := tb.get(1, s); (got == none) != (i%3 == 0) {
			t.Errorf("get(1, %v) = %d after dropping every third", s, got)
		}
		if got := tb.get(0, s); got == none || tb.e[got].src != s || tb.e[got].m != 0 {
			t.Errorf("get(0, %v) = %d", s, got)
		}
	}
	for i, s := range srcs {
		if i%3 == 0 {
			tb.add(1, s, t0)
		}
	}
	checkIndex(t, &tb)
}

// TestIndexWrapAround: a run that starts at the last slot wraps to the
// first, and backward-shift deletion moves entries back across the wrap.
func TestIndexWrapAround(t *testing.T) {
	tb := newTable(16, 1)
	tb.idx.hashMask = minSlots - 1 // the first index has minSlots slots
	// Find sources whose home is the last slot or the one before it.
	var srcs []netip.Addr
	for i := 0; len(srcs) < 8 && i < 1<<20; i++ {
		s := spoofed(i)
		if tb.idx.hash(0, s) >= minSlots-2 {
			srcs = append(srcs, s)
		}
	}
	if len(srcs) < 8 {
		t.Fatal("no sources found for the last two slots")
	}
	for _, s := range srcs {
		tb.add(0, s, t0)
	}
	if len(tb.idx.s) != minSlots {
		t.Fatalf("index has %d slots, want %d", len(tb.idx.s), minSlots)
	}
	if tb.idx.s[0].ref == 0 {
		t.Fatal("the run does not wrap to slot 0")
	}
	checkIndex(t, &tb)
	for _, s := range srcs[:4] {
		tb.drop(tb.get(0, s))
		checkIndex(t, &tb)
	}
	for _, s := range srcs[4:] {
		if tb.get(0, s) == none {
			t.Errorf("%v lost after deletions across the wrap", s)
		}
	}
}

// TestIndexGrowsLazily: a fresh table has no slots; they grow with the
// entries, to twice the cap at most, and the full table's churn keeps them.
func TestIndexGrowsLazily(t *testing.T) {
	tb := newTable(DefaultMaxEntries, 1)
	if len(tb.idx.s) != 0 {
		t.Fatalf("fresh index has %d slots, want none", len(tb.idx.s))
	}
	for i := range 1000 {
		tb.add(0, spoofed(i), t0)
	}
	if n := len(tb.idx.s); n != 2048 {
		t.Errorf("index of 1000 entries has %d slots, want 2048", n)
	}
	for i := 1000; i < DefaultMaxEntries+5000; i++ {
		tb.add(0, spoofed(i), t0)
	}
	if n := len(tb.idx.s); n != 2*DefaultMaxEntries {
		t.Errorf("full index has %d slots, want %d", n, 2*DefaultMaxEntries)
	}
	if tb.evicted != 5000 {
		t.Errorf("evicted %d, want 5000", tb.evicted)
	}
	checkIndex(t, &tb)
}

// TestIndexSeeded: two matchers hash alike keys differently, so a set of
// colliding spoofed sources cannot be computed in advance.
func TestIndexSeeded(t *testing.T) {
	a, b := newIndex(16), newIndex(16)
	same := 0
	for i := range 64 {
		if a.hash(0, spoofed(i)) == b.hash(0, spoofed(i)) {
			same++
		}
	}
	if same == 64 {
		t.Error("two indexes hash 64 keys alike: the seed is not random")
	}
}

// TestObserveChurnDoesNotAllocate: with the table full and every hit a new
// source that evicts, Observe allocates nothing.
func TestObserveChurnDoesNotAllocate(t *testing.T) {
	d := door("ssh", "7000/tcp,8000/udp,9000/tcp", "")
	d.SeqTimeout = policy.MaxSeqTimeout
	m := New(pol(d), Config{MaxEntries: 4096})
	h := Hit{Proto: policy.TCP, Port: 7000, Flags: syn}
	now := t0
	i := 0
	step := func() {
		now = now.Add(time.Microsecond)
		if i%2 == 0 {
			h.Src = spoofed(i % 50000)
		} else {
			h.Src = src6n(i % 50000)
		}
		m.Observe(h, now)
		i++
	}
	for range 10000 {
		step()
	}
	if n := testing.AllocsPerRun(20000, step); n != 0 {
		t.Errorf("Observe under churn allocates %v times per hit, want 0", n)
	}
	if m.Stats().Evicted < 20000 {
		t.Errorf("only %d evictions: the stream does not churn", m.Stats().Evicted)
	}
}

// TestIndexRemap: after Update renumbers and drops sequences, the index is
// rebuilt under the new machine numbers, with every key still colliding.
func TestIndexRemap(t *testing.T) {
	m := New(pol(door("ssh", "7000,8000,9000", ""), door("web", "6000,6001,6002", "")), Config{MaxEntries: 64})
	m.t.idx.hashMask = 1
	now := t0
	for i := range 20 {
		for _, port := range []uint16{7000, 6000} {
			now = now.Add(time.Millisecond)
			m.Observe(Hit{Src: spoofed(i), Proto: policy.TCP, Port: port, Flags: syn}, now)
		}
	}
	checkIndex(t, &m.t)
	// web moves to machine 0, ssh is gone.
	m.Update(pol(door("web", "6000,6001,6002", ""), door("mail", "5000,5001", "")))
	checkIndex(t, &m.t)
	if m.Len() != 20 {
		t.Fatalf("Len %d after Update, want the 20 web entries", m.Len())
	}
	for i := range 20 {
		now = now.Add(time.Millisecond)
		d := m.Observe(Hit{Src: spoofed(i), Proto: policy.TCP, Port: 6001, Flags: syn}, now)
		if len(d) != 1 || d[0].Kind != Stage || d[0].Stage != 2 {
			t.Fatalf("web step 2 for %v after Update: %+v", spoofed(i), d)
		}
	}
	checkIndex(t, &m.t)
}

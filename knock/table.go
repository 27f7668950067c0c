package knock

import (
	"net/netip"
	"time"
)

// none is the nil index of the intrusive lists.
const none int32 = -1

// Link slots of an entry: each entry is on one level list and on its
// machine's list at once; a free entry is on the free list through its level
// link.
const (
	byLevel   = 0 // level list (or free list), in order of last change
	byMachine = 1 // its machine's list, in order of first hit
)

// entry is one source in the middle of one sequence.
type entry struct {
	src   netip.Addr
	first time.Time // time of the first hit; seq_timeout runs from here
	m     int32     // machine index
	stage int32     // steps matched so far, 1..len-1; 0 when free
	h     uint32    // the index's hash of (m, src)
	link  [2]struct{ prev, next int32 }
}

// list is the head and tail of an intrusive doubly-linked list of entries.
type list struct {
	head, tail int32
	n          int
}

func emptyList() list { return list{head: none, tail: none} }

// table holds the entries: a preallocated array, a free list, an index from
// (machine, source) to the entry (index.go), two level lists (stage 1, and stage
// 2 or more) for eviction and one list per machine for expiry.
type table struct {
	e     []entry
	idx   index
	free  list
	fresh int32   // entries from here on were never used: free, off the free list
	level [2]list // [0]: at stage 1; [1]: further along
	mach  []list  // per machine, in order of first hit

	// onEvict, when set, hears of every eviction: the victim's machine and
	// source, and the machine that needed the room (tests use it to keep a
	// reference matcher in step).
	onEvict func(victim int32, src netip.Addr, forMachine int32)
	evicted uint64

	// The key and hash of the last lookup: a miss is usually followed by
	// an add of the same key, which then does not hash again.
	lastM   int32
	lastSrc netip.Addr
	lastH   uint32
}

func newTable(size, machines int) table {
	// The array is allocated whole but touched only as entries are first
	// used, and the index grows with them: an idle daemon keeps neither
	// resident. Once the table has been full, neither allocates again.
	t := table{
		e:     make([]entry, size),
		idx:   newIndex(size),
		free:  emptyList(),
		level: [2]list{emptyList(), emptyList()},
	}
	t.setMachines(machines)
	return t
}

func (t *table) setMachines(n int) {
	t.mach = make([]list, n)
	for i := range t.mach {
		t.mach[i] = emptyList()
	}
}

// len returns the number of entries in use.
func (t *table) len() int { return int(t.fresh) - t.free.n }

// get returns the entry of machine m for src, or none. It costs an index
// lookup only when machine m has entries at all.
func (t *table) get(m int32, src netip.Addr) int32 {
	if t.mach[m].n == 0 {
		return none
	}
	h := t.idx.hash(m, src)
	t.lastM, t.lastSrc, t.lastH = m, src, h
	return t.idx.find(t.e, h, m, src)
}

// hash returns the index's hash of (m, src), from the last lookup if it was
// of the same key.
func (t *table) hash(m int32, src netip.Addr) uint32 {
	if m == t.lastM && src == t.lastSrc {
		return t.lastH
	}
	return t.idx.hash(m, src)
}

// push appends entry i to the tail of l through link slot k.
func (t *table) push(l *list, i int32, k int) {
	lk := &t.e[i].link[k]
	lk.prev, lk.next = l.tail, none
	if l.tail != none {
		t.e[l.tail].link[k].next = i
	} else {
		l.head = i
	}
	l.tail = i
	l.n++
}

// remove unlinks entry i from l through link slot k.
func (t *table) remove(l *list, i int32, k int) {
	lk := &t.e[i].link[k]
	if lk.prev != none {
		t.e[lk.prev].link[k].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != none {
		t.e[lk.next].link[k].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	lk.prev, lk.next = none, none
	l.n--
}

func levelOf(stage int32) int {
	if stage <= 1 {
		return 0
	}
	return 1
}

// add starts a new entry at stage 1, evicting one if the table is full: the
// oldest entry at stage 1, or, only when there is none, the oldest entry
// further along.
func (t *table) add(m int32, src netip.Addr, now time.Time) int32 {
	if t.free.n == 0 && int(t.fresh) == len(t.e) {
		victim := t.level[0].head
		if victim == none {
			victim = t.level[1].head
		}
		v := &t.e[victim]
		if t.onEvict != nil {
			t.onEvict(v.m, v.src, m)
		}
		t.drop(victim)
		t.evicted++
	}
	i := t.free.head
	if i != none {
		t.remove(&t.free, i, byLevel)
	} else {
		i = t.fresh
		t.fresh++
	}
	e := &t.e[i]
	e.src, e.first, e.m, e.stage, e.h = src, now, m, 1, t.hash(m, src)
	t.idx.insert(e.h, i)
	t.push(&t.level[0], i, byLevel)
	t.push(&t.mach[m], i, byMachine)
	return i
}

// advance moves entry i one step on, to the tail of its (new) level list.
func (t *table) advance(i int32) {
	e := &t.e[i]
	t.remove(&t.level[levelOf(e.stage)], i, byLevel)
	e.stage++
	t.push(&t.level[levelOf(e.stage)], i, byLevel)
}

// restart puts entry i back at stage 1 with a new first hit, at the tail of
// the stage-1 list and of its machine's list (which stays in order of first
// hit as long as the clock does not go backwards).
func (t *table) restart(i int32, now time.Time) {
	e := &t.e[i]
	t.remove(&t.level[levelOf(e.stage)], i, byLevel)
	t.remove(&t.mach[e.m], i, byMachine)
	e.stage, e.first = 1, now
	t.push(&t.level[0], i, byLevel)
	t.push(&t.mach[e.m], i, byMachine)
}

// drop frees entry i.
func (t *table) drop(i int32) {
	e := &t.e[i]
	t.idx.delete(e.h, i)
	t.remove(&t.level[levelOf(e.stage)], i, byLevel)
	t.remove(&t.mach[e.m], i, byMachine)
	*e = entry{link: e.link}
	t.push(&t.free, i, byLevel)
}

// remap renumbers machines after a policy change: old machine o becomes
// newIdx[o], or its entries are dropped when newIdx[o] < 0. Not on the hot
// path: it rebuilds the index.
func (t *table) remap(newIdx []int32, machines int) {
	old := t.mach
	for o := range old {
		if newIdx[o] >= 0 {
			continue
		}
		for i := old[o].head; i != none; i = old[o].head {
			t.drop(i)
		}
	}
	t.setMachines(machines)
	t.idx.reset()
	for o, l := range old {
		n := newIdx[o]
		if n < 0 {
			continue
		}
		t.mach[n] = l
		for i := l.head; i != none; i = t.e[i].link[byMachine].next {
			e := &t.e[i]
			e.m, e.h = n, t.idx.hash(n, e.src)
			t.idx.insert(e.h, i)
		}
	}
}

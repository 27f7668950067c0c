package knock

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// index maps (machine, source) to the entry that holds it. It is an open
// addressing hash table with linear probing over the table's entry array:
// a slot holds an entry's index and a 32-bit hash of its key, so that a
// probe compares the entry itself only when the hashes agree. Deletion
// shifts the following slots of the run back (no tombstones), so a lookup
// miss stops at the first empty slot however long the table has churned.
//
// The slots grow by doubling while the load would exceed one half, up to
// the smallest power of two at least twice the entry cap: an idle daemon
// keeps none of them resident, and once the table has been full the index
// never allocates again.
//
// The hash is keyed with a random seed drawn at construction, so that
// spoofed sources cannot be chosen to collide.
type index struct {
	s        []slot
	n        int // slots in use
	max      int // the most slots the index grows to
	seed     [3]uint64
	hashMask uint32 // ^0; tests narrow it to force collisions
}

// slot is one cell of the index: ref is the entry's index + 1 (0: empty),
// tag the key's hash, whose low bits are the slot the key wants.
type slot struct {
	tag uint32
	ref int32
}

// minSlots is the size of the index when the first entry is taken.
const minSlots = 64

func newIndex(size int) index {
	mx := minSlots
	for mx < 2*size && mx < 1<<31 {
		mx *= 2
	}
	return index{
		max:      mx,
		seed:     [3]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64()},
		hashMask: ^uint32(0),
	}
}

// hash returns the 32-bit hash of (m, src): a wyhash-style mix of the
// address's two 64-bit halves and the machine index.
func (x *index) hash(m int32, src netip.Addr) uint32 {
	b := src.As16()
	a := binary.BigEndian.Uint64(b[:8]) ^ x.seed[0]
	c := binary.BigEndian.Uint64(b[8:]) ^ x.seed[1] ^ uint64(uint32(m))<<32
	hi, lo := bits.Mul64(a, c)
	hi, lo = bits.Mul64(hi^x.seed[2], lo^0xe7037ed1a0b428db)
	return uint32(hi^lo) & x.hashMask
}

// find returns the entry of e that holds (m, src) with hash h, or none.
func (x *index) find(e []entry, h uint32, m int32, src netip.Addr) int32 {
	if len(x.s) == 0 {
		return none
	}
	mask := uint32(len(x.s) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := x.s[p]
		if s.ref == 0 {
			return none
		}
		if s.tag == h {
			if en := &e[s.ref-1]; en.m == m && en.src == src {
				return s.ref - 1
			}
		}
	}
}

// insert records entry i under hash h. The key must not be in the index.
func (x *index) insert(h uint32, i int32) {
	if 2*(x.n+1) > len(x.s) && len(x.s) < x.max {
		x.grow()
	}
	x.place(h, i+1)
	x.n++
}

// place puts ref in the first empty slot from h's.
func (x *index) place(h uint32, ref int32) {
	mask := uint32(len(x.s) - 1)
	p := h & mask
	for x.s[p].ref != 0 {
		p = (p + 1) & mask
	}
	x.s[p] = slot{tag: h, ref: ref}
}

// grow doubles the slots (or allocates the first ones) and re-places the
// entries: the tags are the hashes, so the entries are not touched.
func (x *index) grow() {
	old := x.s
	x.s = make([]slot, max(minSlots, 2*len(old)))
	for _, s := range old {
		if s.ref != 0 {
			x.place(s.tag, s.ref)
		}
	}
}

// delete removes entry i, whose key has hash h, then shifts back the
// entries after it in the run that may move closer to their own slot.
func (x *index) delete(h uint32, i int32) {
	mask := uint32(len(x.s) - 1)
	p := h & mask
	for x.s[p].ref != i+1 {
		if x.s[p].ref == 0 {
			panic("knock: index: deleting an entry that is not there")
		}
		p = (p + 1) & mask
	}
	for j := (p + 1) & mask; ; j = (j + 1) & mask {
		s := x.s[j]
		if s.ref == 0 {
			break
		}
		// s may move to p if p lies on its probe path, from its own slot
		// to j.
		if (j-s.tag)&mask >= (j-p)&mask {
			x.s[p] = s
			p = j
		}
	}
	x.s[p] = slot{}
	x.n--
}

// reset empties the index, keeping its slots.
func (x *index) reset() {
	clear(x.s)
	x.n = 0
}

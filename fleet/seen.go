package fleet

import (
	"container/heap"
	"time"
)

// Seen remembers the records a receiver has applied, by origin and id,
// until their not_after, so that a replayed record is refused. It holds at
// most its capacity: when full, the entry with the earliest deadline is
// evicted first (the one whose replay could open a door for the shortest
// time). It takes no locks and reads no clock.
type Seen struct {
	capacity int
	heap     seenHeap
}

type seenKey struct{ origin, id string }

type seenEntry struct {
	key      seenKey
	deadline time.Time
}

// NewSeen returns an empty set that holds at most capacity ids (at
// least 1).
func NewSeen(capacity int) *Seen {
	return &Seen{capacity: max(capacity, 1), heap: seenHeap{index: map[seenKey]int{}}}
}

// Has reports whether origin's record id is remembered. A nil Seen
// remembers nothing.
func (s *Seen) Has(origin, id string) bool {
	if s == nil {
		return false
	}
	_, ok := s.heap.index[seenKey{origin, id}]
	return ok
}

// Add remembers origin's record id until deadline. If the set is then over
// its capacity, the entry with the earliest deadline (possibly this one) is
// evicted. It returns how many entries it
// evicted (0 or 1). Adding a remembered id keeps the later deadline.
func (s *Seen) Add(origin, id string, deadline time.Time) (evicted int) {
	k := seenKey{origin, id}
	if i, ok := s.heap.index[k]; ok {
		if deadline.After(s.heap.e[i].deadline) {
			s.heap.e[i].deadline = deadline
			heap.Fix(&s.heap, i)
		}
		return 0
	}
	heap.Push(&s.heap, seenEntry{key: k, deadline: deadline})
	if len(s.heap.e) > s.capacity {
		// The earliest deadline of all, the new entry's included.
		heap.Pop(&s.heap)
		evicted = 1
	}
	return evicted
}

// Expire forgets every id whose deadline is at or before now and returns
// how many it forgot.
func (s *Seen) Expire(now time.Time) int {
	n := 0
	for len(s.heap.e) > 0 && !s.heap.e[0].deadline.After(now) {
		heap.Pop(&s.heap)
		n++
	}
	return n
}

// Len returns the number of remembered ids.
func (s *Seen) Len() int { return len(s.heap.e) }

// seenHeap is a min-heap by deadline that keeps Seen.index current.
type seenHeap struct {
	e     []seenEntry
	index map[seenKey]int // key -> position in e
}

func (h *seenHeap) Len() int           { return len(h.e) }
func (h *seenHeap) Less(i, j int) bool { return h.e[i].deadline.Before(h.e[j].deadline) }
func (h *seenHeap) Swap(i, j int) {
	h.e[i], h.e[j] = h.e[j], h.e[i]
	h.index[h.e[i].key] = i
	h.index[h.e[j].key] = j
}
func (h *seenHeap) Push(x any) {
	e := x.(seenEntry)
	h.index[e.key] = len(h.e)
	h.e = append(h.e, e)
}
func (h *seenHeap) Pop() any {
	e := h.e[len(h.e)-1]
	h.e = h.e[:len(h.e)-1]
	delete(h.index, e.key)
	return e
}

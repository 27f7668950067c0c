package fleet

import (
	"strconv"
	"testing"
	"time"
)

func TestSeen(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	s := NewSeen(3)
	s.Add("a", "1", t0.Add(30*time.Second))
	s.Add("a", "2", t0.Add(10*time.Second))
	s.Add("b", "1", t0.Add(20*time.Second))
	if !s.Has("a", "1") || !s.Has("a", "2") || !s.Has("b", "1") || s.Has("b", "2") {
		t.Fatal("Has is wrong after adds")
	}
	// Full: the earliest deadline (a/2) goes first.
	if n := s.Add("c", "1", t0.Add(40*time.Second)); n != 1 {
		t.Errorf("evicted %d, want 1", n)
	}
	if s.Has("a", "2") || !s.Has("c", "1") || s.Len() != 3 {
		t.Errorf("after eviction: a/2 %v, c/1 %v, len %d", s.Has("a", "2"), s.Has("c", "1"), s.Len())
	}
	// Re-adding keeps the later deadline: b/1 now outlives a/1.
	s.Add("b", "1", t0.Add(35*time.Second))
	s.Add("b", "1", t0.Add(time.Second))
	if n := s.Expire(t0.Add(30 * time.Second)); n != 1 {
		t.Errorf("expired %d at +30s, want 1 (a/1, deadline exactly now)", n)
	}
	if s.Has("a", "1") || !s.Has("b", "1") || !s.Has("c", "1") {
		t.Error("Expire removed the wrong ids")
	}
	if n := s.Expire(t0.Add(time.Hour)); n != 2 || s.Len() != 0 {
		t.Errorf("expired %d, len %d, want 2, 0", n, s.Len())
	}
	var nilSeen *Seen
	if nilSeen.Has("a", "1") {
		t.Error("nil Seen has an id")
	}
}

// TestSeenBounded adds far more ids than the capacity, in random deadline
// order, and checks the bound and that the survivors are the latest.
func TestSeenBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	s := NewSeen(100)
	for i := range 10000 {
		d := (i * 7919) % 10000 // a permutation of 0..9999
		s.Add("o", strconv.Itoa(d), t0.Add(time.Duration(d)*time.Millisecond))
		if s.Len() > 100 {
			t.Fatalf("len %d > 100", s.Len())
		}
	}
	for d := 9900; d < 10000; d++ {
		if !s.Has("o", strconv.Itoa(d)) {
			t.Fatalf("id %d with a late deadline was evicted", d)
		}
	}
}

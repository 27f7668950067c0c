package spa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func rkey(i int) [32]byte { return ReplayKey([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) }

func TestReplayCacheExpiry(t *testing.T) {
	t.Parallel()
	c := NewReplayCache(240*time.Second, 0)
	c.Add(rkey(1), t0)
	for _, tt := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {239 * time.Second, true}, {240 * time.Second, false}, {time.Hour, false}} {
		if got := c.Seen(rkey(1), t0.Add(tt.at)); got != tt.want {
			t.Errorf("Seen at +%v = %v, want %v", tt.at, got, tt.want)
		}
	}
	if c.Seen(rkey(2), t0) {
		t.Error("unknown key seen")
	}
	// Adding later drops the expired entry.
	c.Add(rkey(2), t0.Add(241*time.Second))
	if c.Len() != 1 {
		t.Errorf("Len = %d after expiry, want 1", c.Len())
	}
	// Re-adding an expired key records it anew.
	c.Add(rkey(1), t0.Add(300*time.Second))
	if !c.Seen(rkey(1), t0.Add(301*time.Second)) {
		t.Error("re-added key not seen")
	}
}

func TestReplayCacheBounded(t *testing.T) {
	t.Parallel()
	const capacity = 1000
	c := NewReplayCache(time.Hour, capacity)
	for i := range 10 * capacity {
		c.Add(rkey(i), t0.Add(time.Duration(i)*time.Millisecond))
		if c.Len() > capacity {
			t.Fatalf("Len %d > cap after %d adds", c.Len(), i+1)
		}
	}
	now := t0.Add(10 * time.Second)
	// The newest cap entries are kept, the older ones evicted.
	for _, i := range []int{10*capacity - 1, 9 * capacity} {
		if !c.Seen(rkey(i), now) {
			t.Errorf("recent key %d evicted", i)
		}
	}
	if c.Seen(rkey(9*capacity-1), now) || c.Seen(rkey(0), now) {
		t.Error("oldest keys kept")
	}
	if len(c.byExp) != capacity {
		t.Errorf("expiry heap holds %d entries for %d live", len(c.byExp), capacity)
	}
}

// TestReplayCacheOwnExpiry: each entry expires at its own time, whatever
// the order of arrival; a full cache drops the one that expires first; a
// key added again keeps the later expiry.
func TestReplayCacheOwnExpiry(t *testing.T) {
	t.Parallel()
	c := NewReplayCache(time.Minute, 3)
	c.AddUntil(rkey(1), t0, t0.Add(500*time.Second))
	c.AddUntil(rkey(2), t0, t0.Add(100*time.Second))
	c.AddUntil(rkey(3), t0, t0.Add(300*time.Second))
	c.AddUntil(rkey(1), t0, t0.Add(200*time.Second)) // earlier: keeps 500
	if n := c.Added(); n != 3 {
		t.Errorf("Added = %d, want 3 (the shorter re-add changes nothing)", n)
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tt := range []struct {
		key  int
		at   int
		want bool
	}{{2, 99, true}, {2, 100, false}, {3, 299, true}, {1, 499, true}, {1, 500, false}} {
		if got := c.Seen(rkey(tt.key), at(tt.at)); got != tt.want {
			t.Errorf("Seen(%d) at +%ds = %v, want %v", tt.key, tt.at, got, tt.want)
		}
	}
	// Full: adding a fourth drops key 2, the first to expire.
	c.AddUntil(rkey(4), t0, at(50))
	if c.Seen(rkey(2), t0) || !c.Seen(rkey(1), t0) || !c.Seen(rkey(3), t0) || !c.Seen(rkey(4), t0) {
		t.Errorf("after the fourth: seen 1..4 = %v %v %v %v, want all but 2", c.Seen(rkey(1), t0), c.Seen(rkey(2), t0), c.Seen(rkey(3), t0), c.Seen(rkey(4), t0))
	}
	// Time passes: an add drops what expired.
	c.AddUntil(rkey(5), at(400), at(600))
	if c.Len() != 2 {
		t.Errorf("Len = %d at +400s, want 2 (keys 1 and 5)", c.Len())
	}
}

// TestReplayCacheV1File: a file written in v1 (arrival times) loads, each
// entry held for ttl from its arrival, and is saved again as v2.
func TestReplayCacheV1File(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "replay")
	k1, k2 := rkey(1), rkey(2)
	v1 := fmt.Sprintf("%s\n%x %d\n%x %d\n", replayHeaderV1, k1, t0.UnixNano(), k2, t0.Add(100*time.Second).UnixNano())
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewReplayCache(240*time.Second, 0)
	now := t0.Add(250 * time.Second)
	if err := c.Load(path, now); err != nil {
		t.Fatal(err)
	}
	if c.Seen(k1, now) || !c.Seen(k2, now) || c.Seen(k2, t0.Add(340*time.Second)) {
		t.Errorf("v1 entries: seen %v %v, want key 1 expired at +240s, key 2 held until +340s", c.Seen(k1, now), c.Seen(k2, now))
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := fmt.Sprintf("%s\n%x %d\n", replayHeader, k2, t0.Add(340*time.Second).UnixNano()); string(b) != want {
		t.Errorf("saved:\n%s\nwant:\n%s", b, want)
	}
}

// TestReplayClockAhead: a client whose clock runs 200 s fast, max age
// 120 s. Its packet is refused as too new when it arrives (t0) and enters
// the cache; replayed at t0+250 s, when the age check alone would accept
// it (50 s old), it is refused as a replay, across a restart too; after
// its window (t0+320 s) the age check refuses it.
func TestReplayClockAhead(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	maxAge := 120 * time.Second
	w := mustEncode(t, k, access22("198.51.100.7"), t0.Add(200*time.Second))
	rc := NewReplayCache(2*maxAge, 0)
	v := mustVerifier(t, k, maxAge, rc)
	_, err := v.Verify(w, t0)
	wantReason(t, err, ReasonTooNew)
	_, err = v.Verify(w, t0.Add(250*time.Second))
	wantReason(t, err, ReasonReplay)

	path := filepath.Join(t.TempDir(), "replay")
	if err := rc.Save(path); err != nil {
		t.Fatal(err)
	}
	rc2 := NewReplayCache(2*maxAge, 0)
	if err := rc2.Load(path, t0.Add(250*time.Second)); err != nil {
		t.Fatal(err)
	}
	v2 := mustVerifier(t, k, maxAge, rc2)
	_, err = v2.Verify(w, t0.Add(319*time.Second))
	wantReason(t, err, ReasonReplay)
	_, err = v2.Verify(w, t0.Add(321*time.Second))
	wantReason(t, err, ReasonTooOld)
}

func TestReplayCachePersist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "replay")
	c := NewReplayCache(240*time.Second, 0)
	c.Add(rkey(1), t0)
	c.Add(rkey(2), t0.Add(100*time.Second))
	c.Add(rkey(3), t0.Add(200*time.Second))
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the directory; temporary file left behind?", len(ents))
	}
	// A restart 250 s later: entry 1 has expired, 2 and 3 still refuse.
	now := t0.Add(250 * time.Second)
	r := NewReplayCache(240*time.Second, 0)
	if err := r.Load(path, now); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.Seen(rkey(1), now) || !r.Seen(rkey(2), now) || !r.Seen(rkey(3), now) {
		t.Errorf("after load: len %d, seen %v %v %v", r.Len(), r.Seen(rkey(1), now), r.Seen(rkey(2), now), r.Seen(rkey(3), now))
	}
	// Saving again overwrites.
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	// A missing file is a first start.
	if err := NewReplayCache(time.Minute, 0).Load(filepath.Join(dir, "none"), now); err != nil {
		t.Errorf("missing file: %v", err)
	}
	// Unwritable directory: an error, no panic.
	if err := r.Save(filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Error("save into a missing directory: no error")
	}
}

func TestReplayCacheCorrupt(t *testing.T) {
	t.Parallel()
	good := replayHeaderV1 + "\n" + strings.Repeat("ab", 32) + " 1800000000000000000\n"
	for _, tt := range []struct{ name, data string }{
		{"empty", ""},
		{"no header", strings.Repeat("ab", 32) + " 1\n"},
		{"truncated", good[:len(good)-3]},
		{"short key", replayHeader + "\nabcd 1\n"},
		{"long key", replayHeader + "\n" + strings.Repeat("ab", 40) + " 1\n"},
		{"bad hex", replayHeader + "\n" + strings.Repeat("zz", 32) + " 1\n"},
		{"bad time", replayHeader + "\n" + strings.Repeat("ab", 32) + " soon\n"},
		{"binary", "\x00\x01\x02"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "replay")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			c := NewReplayCache(time.Hour, 0)
			err := c.Load(path, t0)
			if !errors.Is(err, ErrCorruptReplayCache) || !strings.Contains(err.Error(), "starting empty") {
				t.Fatalf("err %v, want a corrupt-cache error", err)
			}
			if c.Len() != 0 {
				t.Errorf("Len %d after a corrupt load", c.Len())
			}
		})
	}
	for _, good := range []string{good, replayHeader + "\n" + strings.Repeat("ab", 32) + " 1800000000000000001\n"} {
		path := filepath.Join(t.TempDir(), "replay")
		os.WriteFile(path, []byte(good), 0o600)
		c := NewReplayCache(time.Hour, 0)
		if err := c.Load(path, time.Unix(0, 1800000000000000000)); err != nil || c.Len() != 1 {
			t.Errorf("good file %q: %v, len %d", good[:28], err, c.Len())
		}
	}
}

// TestReplayAcrossRestart: a packet accepted before a restart is refused
// after it, through the Verifier.
func TestReplayAcrossRestart(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	path := filepath.Join(t.TempDir(), "replay")
	w := mustEncode(t, k, access22("198.51.100.7"), t0)
	rc := NewReplayCache(2*DefaultMaxAge, 0)
	if _, err := mustVerifier(t, k, 0, rc).Verify(w, t0); err != nil {
		t.Fatal(err)
	}
	if err := rc.Save(path); err != nil {
		t.Fatal(err)
	}
	rc2 := NewReplayCache(2*DefaultMaxAge, 0)
	if err := rc2.Load(path, t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := mustVerifier(t, k, 0, rc2).Verify(w, t0.Add(5*time.Second))
	wantReason(t, err, ReasonReplay)
}

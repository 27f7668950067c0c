package spa

import (
	"errors"
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
	if len(c.fifo)-c.head != capacity || len(c.fifo) > 3*capacity {
		t.Errorf("queue holds %d live of %d: not compacted", len(c.fifo)-c.head, len(c.fifo))
	}
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
	good := replayHeader + "\n" + strings.Repeat("ab", 32) + " 1800000000000000000\n"
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
	path := filepath.Join(t.TempDir(), "replay")
	os.WriteFile(path, []byte(good), 0o600)
	c := NewReplayCache(time.Hour, 0)
	if err := c.Load(path, time.Unix(0, 1800000000000000000)); err != nil || c.Len() != 1 {
		t.Errorf("good file: %v, len %d", err, c.Len())
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

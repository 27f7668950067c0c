package spa

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sesame-knock/sesame/internal/atomicfile"
)

// DefaultReplayCap bounds a ReplayCache's memory (about 5 MiB when full).
const DefaultReplayCap = 65536

const replayHeader = "# sesame spa replay cache v1"

// ReplayCache remembers the packets already accepted, by ReplayKey, for ttl
// (2×MaxAge: after that the age check refuses them anyway). It holds at
// most capacity entries and evicts the oldest first; only packets with a
// valid HMAC enter it, so only key holders can fill it. Safe for
// concurrent use; the clock is always a parameter.
type ReplayCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	cap  int
	seen map[[32]byte]int64 // key → when added (unix nanoseconds)
	fifo []replayEntry      // in order of addition; fifo[head:] is live
	head int
}

type replayEntry struct {
	key [32]byte
	at  int64
}

// NewReplayCache makes a cache keeping entries for ttl (> 0), at most
// capacity of them (0: DefaultReplayCap).
func NewReplayCache(ttl time.Duration, capacity int) *ReplayCache {
	if capacity <= 0 {
		capacity = DefaultReplayCap
	}
	if ttl <= 0 {
		ttl = 2 * DefaultMaxAge
	}
	return &ReplayCache{ttl: ttl, cap: capacity, seen: map[[32]byte]int64{}}
}

// Len is the number of entries held (expired ones may linger until the
// next Add).
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Seen reports whether key was added less than ttl before now.
func (c *ReplayCache) Seen(key [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[key]
	return ok && !c.expired(at, now.UnixNano())
}

// Add records key at now, dropping expired entries and, when full, the
// oldest one.
func (c *ReplayCache) Add(key [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(key, now.UnixNano(), now.UnixNano())
}

func (c *ReplayCache) expired(at, now int64) bool { return now-at >= int64(c.ttl) }

func (c *ReplayCache) add(key [32]byte, at, now int64) {
	for c.head < len(c.fifo) && (len(c.seen) >= c.cap || c.expired(c.fifo[c.head].at, now)) {
		e := c.fifo[c.head]
		if c.seen[e.key] == e.at {
			delete(c.seen, e.key)
		}
		c.fifo[c.head] = replayEntry{}
		c.head++
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		c.fifo = append(c.fifo[:0], c.fifo[c.head:]...)
		c.head = 0
	}
	if old, ok := c.seen[key]; ok && !c.expired(old, now) {
		return
	}
	c.seen[key] = at
	c.fifo = append(c.fifo, replayEntry{key, at})
}

// Save writes the cache to path atomically (temporary file, fsync,
// rename, fsync of the directory), mode 0600.
func (c *ReplayCache) Save(path string) error {
	c.mu.Lock()
	live := make([]replayEntry, 0, len(c.seen))
	for _, e := range c.fifo[c.head:] {
		if c.seen[e.key] == e.at {
			live = append(live, e)
		}
	}
	c.mu.Unlock()

	var buf bytes.Buffer
	fmt.Fprintln(&buf, replayHeader)
	for _, e := range live {
		fmt.Fprintf(&buf, "%x %d\n", e.key, e.at)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save replay cache %s: %w", path, err)
	}
	return nil
}

// ErrCorruptReplayCache is wrapped by Load when the file cannot be read as
// a cache; the cache is then left empty (log a warning and carry on).
var ErrCorruptReplayCache = errors.New("corrupt replay cache")

// Load adds the entries saved at path that have not expired at now. A
// missing file is not an error (first start). A corrupt file leaves the
// cache empty and returns an error wrapping ErrCorruptReplayCache.
func (c *ReplayCache) Load(path string, now time.Time) error {
	b, err := readLimited(path, maxReplayFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load replay cache: %w", err)
	}
	if len(b) > maxReplayFile {
		return fmt.Errorf("load replay cache %s: %w: larger than %d bytes; starting empty", path, ErrCorruptReplayCache, maxReplayFile)
	}
	entries, err := parseReplayFile(string(b))
	if err != nil {
		return fmt.Errorf("load replay cache %s: %w: %v; starting empty", path, ErrCorruptReplayCache, err)
	}
	slices.SortStableFunc(entries, func(a, b replayEntry) int { return cmpInt64(a.at, b.at) })
	c.mu.Lock()
	defer c.mu.Unlock()
	n := now.UnixNano()
	for _, e := range entries {
		if !c.expired(e.at, n) {
			c.add(e.key, e.at, n)
		}
	}
	return nil
}

// maxReplayFile is far above what DefaultReplayCap entries take (~6 MiB).
const maxReplayFile = 64 << 20

// readLimited reads at most limit+1 bytes of path.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseReplayFile(s string) ([]replayEntry, error) {
	lines := strings.Split(s, "\n")
	if lines[0] != replayHeader {
		return nil, errors.New("line 1: missing header")
	}
	if lines[len(lines)-1] != "" {
		return nil, errors.New("truncated: no final newline")
	}
	var out []replayEntry
	for i, l := range lines[1 : len(lines)-1] {
		var e replayEntry
		k, at, ok := strings.Cut(l, " ")
		ok = ok && len(k) == 2*len(e.key)
		if ok {
			_, herr := hex.Decode(e.key[:], []byte(k))
			t, terr := strconv.ParseInt(at, 10, 64)
			ok, e.at = herr == nil && terr == nil, t
		}
		if !ok {
			return nil, fmt.Errorf("line %d: want 64 hex digits, a space and unix nanoseconds", i+2)
		}
		out = append(out, e)
	}
	return out, nil
}

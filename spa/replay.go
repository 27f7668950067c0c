package spa

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
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

// The file's first line. v1 files (an arrival time per entry, kept for
// ttl) are still read; Save writes v2 (an expiry time per entry).
const (
	replayHeaderV1 = "# sesame spa replay cache v1"
	replayHeader   = "# sesame spa replay cache v2"
)

// ReplayCache remembers the packets already accepted, by ReplayKey, each
// until its own expiry: the end of the window in which the age check
// would still let it through (Verifier: max(arrival, timestamp) + max
// age, so that a packet from a clock running ahead stays refused for as
// long as it stays fresh). It holds at most capacity entries and, when
// full, drops the one that expires first; only packets with a valid HMAC
// enter it, so only key holders can fill it. Safe for concurrent use; the
// clock is always a parameter.
type ReplayCache struct {
	mu    sync.Mutex
	ttl   time.Duration // the hold of Add and of v1 file entries
	cap   int
	seen  map[[32]byte]int64 // key → expiry (unix nanoseconds)
	byExp expiryHeap         // the entries by expiry; stale ones are skipped
	added uint64
}

type replayEntry struct {
	key [32]byte
	exp int64
}

// NewReplayCache makes a cache whose Add keeps an entry for ttl (> 0;
// also the hold of entries read from a v1 file, counted from their
// arrival), with at most capacity entries (0: DefaultReplayCap).
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

// Added counts the Add and AddUntil calls that recorded or extended an
// entry: a caller that persists the cache saves when it moved.
func (c *ReplayCache) Added() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.added
}

// Seen reports whether key is held and not expired at now.
func (c *ReplayCache) Seen(key [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.seen[key]
	return ok && now.UnixNano() < exp
}

// Add records key at now for the cache's ttl.
func (c *ReplayCache) Add(key [32]byte, now time.Time) {
	c.AddUntil(key, now, now.Add(c.ttl))
}

// AddUntil records key until until (at the latest of that and an earlier
// expiry of the same key), dropping entries expired at now and, when
// full, the one that expires first.
func (c *ReplayCache) AddUntil(key [32]byte, now, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(key, unixNano(until), now.UnixNano())
}

// unixNano is t in unix nanoseconds, saturated: a timestamp past 2262
// (which only a key holder can send) is held as long as the cache lives.
func unixNano(t time.Time) int64 {
	if t.Unix() >= math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	if t.Unix() < 0 {
		return 0
	}
	return t.UnixNano()
}

func (c *ReplayCache) add(key [32]byte, exp, now int64) {
	old, held := c.seen[key]
	held = held && old > now
	for len(c.byExp) > 0 {
		e := c.byExp[0]
		live := c.seen[e.key] == e.exp
		if live && e.exp > now && (held || len(c.seen) < c.cap) {
			break
		}
		heap.Pop(&c.byExp)
		if live {
			delete(c.seen, e.key)
		}
	}
	if held && old >= exp || exp <= now {
		return
	}
	c.seen[key] = exp
	heap.Push(&c.byExp, replayEntry{key, exp})
	c.added++
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []replayEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Save writes the cache to path atomically (temporary file, fsync,
// rename, fsync of the directory), mode 0600, in the v2 format: a header
// line, then one "KEY EXPIRY" line per entry (64 hex digits, unix
// nanoseconds).
func (c *ReplayCache) Save(path string) error {
	c.mu.Lock()
	live := make([]replayEntry, 0, len(c.seen))
	for k, exp := range c.seen {
		live = append(live, replayEntry{k, exp})
	}
	c.mu.Unlock()
	slices.SortFunc(live, func(a, b replayEntry) int { return cmp.Compare(a.exp, b.exp) })

	var buf bytes.Buffer
	fmt.Fprintln(&buf, replayHeader)
	for _, e := range live {
		fmt.Fprintf(&buf, "%x %d\n", e.key, e.exp)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save replay cache %s: %w", path, err)
	}
	return nil
}

// ErrCorruptReplayCache is wrapped by Load when the file cannot be read as
// a cache; the cache is then left empty (log a warning and carry on).
var ErrCorruptReplayCache = errors.New("corrupt replay cache")

// Load adds the entries saved at path that have not expired at now: a v2
// file's with their expiry, a v1 file's (written by sesame before v2)
// until their arrival + ttl, as v1 held them. A missing file is not an
// error (first start). A corrupt file leaves the cache empty and returns
// an error wrapping ErrCorruptReplayCache.
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
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, err := parseReplayFile(string(b), int64(c.ttl))
	if err != nil {
		return fmt.Errorf("load replay cache %s: %w: %v; starting empty", path, ErrCorruptReplayCache, err)
	}
	n := now.UnixNano()
	for _, e := range entries {
		c.add(e.key, e.exp, n)
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

// parseReplayFile reads a v2 file, or a v1 file whose arrival times it
// turns into expiries ttl later.
func parseReplayFile(s string, ttl int64) ([]replayEntry, error) {
	lines := strings.Split(s, "\n")
	var hold int64
	switch lines[0] {
	case replayHeader:
	case replayHeaderV1:
		hold = ttl
	default:
		return nil, errors.New("line 1: missing header")
	}
	if lines[len(lines)-1] != "" {
		return nil, errors.New("truncated: no final newline")
	}
	var out []replayEntry
	for i, l := range lines[1 : len(lines)-1] {
		var e replayEntry
		k, t, ok := strings.Cut(l, " ")
		ok = ok && len(k) == 2*len(e.key)
		if ok {
			_, herr := hex.Decode(e.key[:], []byte(k))
			ns, terr := strconv.ParseInt(t, 10, 64)
			ok, e.exp = herr == nil && terr == nil, ns
			if e.exp < math.MaxInt64-hold {
				e.exp += hold
			}
		}
		if !ok {
			return nil, fmt.Errorf("line %d: want 64 hex digits, a space and unix nanoseconds", i+2)
		}
		out = append(out, e)
	}
	return out, nil
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

// replayFile is the replay cache's file in the policy's state_dir.
const replayFile = "spa-replay"

// SPA packets have their own capture socket on each interface (capture.
// OpenSPA: UDP to SPA ports only) and are verified where they are read: in
// that socket's reader goroutine (readSPA), on the read buffer itself,
// before anything is copied. A garbage packet costs one HMAC per client of
// the door and no allocation beyond spa.Verify's, and never holds up the
// knock readers; a SYN flood never reaches this socket. Only accepted
// requests (which carry a copy of what they need) go on to the loop
// goroutine, which checks them against the door and grants through the
// same batched Apply as knocks.
//
// Verification is serialized by a mutex: the replay cache's "seen?" and
// "add" are two steps, and a packet copied onto two interfaces must not
// slip through both readers at once. An HMAC takes about a microsecond, so
// the lock is never the bottleneck of a flood. A packet that enters the
// replay cache is written to disk before its request goes to the loop:
// a crash between the two can lose a grant but never allow a replay (as
// TOTP burns and one-time sequences).

// spaRequest is an accepted SPA message on its way to the loop.
type spaRequest struct {
	door   *policy.Door
	client *policy.Client
	src    netip.Addr
	msg    spa.Message
	key    [32]byte // the packet's replay key: a fleet record burns it at every member
}

// spaDoor is one SPA door with a Verifier per client.
type spaDoor struct {
	door *policy.Door
	vs   []*spa.Verifier
}

// spaState verifies SPA packets for the SPA readers and keeps the
// daemon's one replay cache, persisted in the state directory.
type spaState struct {
	log   *slog.Logger
	out   chan spaRequest
	doors atomic.Pointer[map[uint16]*spaDoor]
	met   *spaMetrics
	limit refusalLimiter
	now   func() time.Time

	mu    sync.Mutex // serializes Verify (see above) and saves, guards cache, path
	cache *spa.ReplayCache
	path  string // "" until a policy with SPA doors was loaded
	saved uint64 // cache.Added() at the last save
}

func newSPAState(log *slog.Logger, reg *prometheus.Registry) *spaState {
	s := &spaState{log: log, out: make(chan spaRequest, 256), met: newSPAMetrics(reg), now: time.Now}
	s.limit.perSecond = refusalLogsPerSecond
	empty := map[uint16]*spaDoor{}
	s.doors.Store(&empty)
	return s
}

// update builds the verifiers for p's SPA doors, all or nothing: on error
// the state is unchanged. The first policy with SPA doors loads the replay
// cache from its state_dir: a restart does not re-open a replay window. A
// cache that cannot be read makes the update fail (a corrupt one is only
// logged: the cache then starts empty).
func (s *spaState) update(p *policy.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	doors := map[uint16]*spaDoor{}
	var maxAge time.Duration
	for i := range p.Doors {
		if d := &p.Doors[i]; d.Kind() == policy.KindSPA {
			maxAge = max(maxAge, d.SPA.MaxAge)
		}
	}
	if maxAge == 0 {
		s.doors.Store(&doors)
		return nil
	}
	cache, path := s.cache, filepath.Join(p.StateDir, replayFile)
	if cache == nil || path != s.path {
		// A new cache: the first SPA door, or a new state_dir. It starts
		// from the file (the old cache saved it first). Entries carry
		// their own expiry; 2 x max_age is the hold of entries in a v1
		// file, as v1 kept them.
		if s.cache != nil {
			if err := s.cache.Save(s.path); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
			return fmt.Errorf("state_dir: %w", err)
		}
		cache = spa.NewReplayCache(2*maxAge, 0)
		err := cache.Load(path, s.now())
		switch {
		case errors.Is(err, spa.ErrCorruptReplayCache):
			s.log.Warn(logevent.SPAReplayUnreadable, "file", path, "err", err)
		case err != nil:
			return fmt.Errorf("load spa replay cache: %w", err)
		}
		if err := cache.Save(path); err != nil { // fail now, not at the first packet
			return err
		}
	}
	for i := range p.Doors {
		d := &p.Doors[i]
		if d.Kind() != policy.KindSPA {
			continue
		}
		sd := &spaDoor{door: d}
		for _, c := range d.Clients {
			v, err := spa.NewVerifier(c.Keys, d.SPA.MaxAge, cache)
			if err != nil {
				return fmt.Errorf("door %q client %q: %w", d.Name, c.Name, err)
			}
			sd.vs = append(sd.vs, v)
		}
		doors[d.SPA.Port] = sd
	}
	if cache != s.cache {
		s.cache, s.path, s.saved = cache, path, cache.Added()
	}
	s.doors.Store(&doors)
	return nil
}

// readSPA reads one interface's SPA socket until ctx ends or the socket
// is closed, and verifies each packet addressed to this host (handle).
func (c *captures) readSPA(ctx context.Context, name string, r *reader) {
	packets := c.met.packets.WithLabelValues(name)
	var one [1]knock.Hit
	for {
		if _, err := r.conn.ReadHits(one[:]); err != nil {
			if c.readFailed(ctx, name, err) {
				return
			}
			continue
		}
		packets.Inc()
		if h := &one[0]; c.local.Contains(h.Dst) {
			c.spa.handle(ctx, h)
		}
	}
}

// handle takes h if it is a UDP packet to an SPA port: it verifies the
// payload in place, writes the replay cache if the packet entered it, and
// queues an accepted request for the loop, unless ctx ends first. It
// reports whether h was an SPA packet.
func (s *spaState) handle(ctx context.Context, h *knock.Hit) bool {
	if s == nil || h.Proto != policy.UDP {
		return false
	}
	d := (*s.doors.Load())[h.Port]
	if d == nil {
		return false
	}
	now := s.now()
	s.mu.Lock()
	var (
		msg    spa.Message
		err    error
		client = -1
	)
	for i, v := range d.vs {
		m, e := v.Verify(h.Payload, now)
		if e == nil {
			msg, err, client = m, nil, i
			break
		}
		// Keep the most telling refusal: one after a matching HMAC, which
		// names the client whose keys matched.
		if err == nil || !hmacMatched(err) && hmacMatched(e) {
			err = e
			if hmacMatched(e) {
				client = i
			}
		}
	}
	s.saveIfAddedLocked()
	s.mu.Unlock()
	if len(d.vs) == 0 {
		err = &spa.Error{Reason: spa.ReasonBadHMAC}
	}
	if err != nil {
		s.refused(d.door, clientName(d.door, client), h.Src, string(spa.ReasonOf(err)), err)
		return true
	}
	s.met.accepted.Inc()
	select {
	case s.out <- spaRequest{door: d.door, client: &d.door.Clients[client], src: h.Src, msg: msg, key: spa.ReplayKey(h.Payload)}:
	case <-ctx.Done():
	}
	return true
}

// hmacMatched reports whether a refusal came after the HMAC check
// passed: the packet was made with that client's keys.
func hmacMatched(err error) bool {
	switch spa.ReasonOf(err) {
	case spa.ReasonBadLength, spa.ReasonBadEncoding, spa.ReasonGPGRefused, spa.ReasonBadHMAC, "":
		return false
	}
	return true
}

func clientName(d *policy.Door, i int) string {
	if i < 0 || i >= len(d.Clients) {
		return ""
	}
	return d.Clients[i].Name
}

// refused logs a refusal, rate-limited (see refusalLimiter), and counts it.
func (s *spaState) refused(d *policy.Door, client string, src netip.Addr, reason string, err error) {
	s.met.refused.WithLabelValues(reason).Inc()
	n, ok := s.limit.allow(s.now())
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("door", d.Name), slog.String("src", src.String())}
	if client != "" {
		attrs = append(attrs, slog.String("client", client))
	}
	attrs = append(attrs, slog.String("reason", reason))
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	if n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", n))
	}
	attrs = append(attrs, slog.Bool("spoofable", true)) // no packet was accepted
	s.log.LogAttrs(context.Background(), slog.LevelWarn, logevent.SPARefused, attrs...)
}

// burn enters a replay key that another member's record says was used
// there, so that a replay of that packet here is refused; it is saved
// like the keys of packets seen here.
func (s *spaState) burn(key [32]byte, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		return
	}
	s.cache.Add(key, now)
	s.saveIfAddedLocked()
}

// saveIfAddedLocked writes the replay cache if a packet entered it since
// the last save. s.mu is held. A failure is logged and the packet still
// goes ahead: it was valid, and the cache holds it in memory until a
// restart.
func (s *spaState) saveIfAddedLocked() {
	if s.cache == nil || s.cache.Added() == s.saved {
		return
	}
	s.saved = s.cache.Added()
	if err := s.cache.Save(s.path); err != nil {
		s.log.Error(logevent.SPAReplayNotSaved, "file", s.path, "err", err, "note", "a restart could accept a replay of the packets since the last save")
	}
}

// saveNow writes the replay cache; Run calls it last, after the SPA
// readers stopped.
func (s *spaState) saveNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		return
	}
	if err := s.cache.Save(s.path); err != nil {
		s.log.Error(logevent.SPAReplayNotSaved, "file", s.path, "err", err, "note", "a restart could accept a replay of the packets since the last save")
	}
}

// refusalLogsPerSecond bounds the spa-refused lines: a flood of garbage to
// the SPA port must not flood the log. Lines past the bound are counted
// (metrics) and the next line logged carries suppressed=N.
const refusalLogsPerSecond = 20

// refusalLimiter allows perSecond lines in each wall-clock second.
type refusalLimiter struct {
	perSecond  int
	mu         sync.Mutex
	second     int64
	used       int
	suppressed uint64
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one logged.
func (l *refusalLimiter) allow(now time.Time) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec := now.Unix(); sec != l.second {
		l.second, l.used = sec, 0
	}
	if l.used >= l.perSecond {
		l.suppressed++
		return 0, false
	}
	l.used++
	n := l.suppressed
	l.suppressed = 0
	return n, true
}

// spaMetrics count SPA packets by outcome.
type spaMetrics struct {
	accepted prometheus.Counter
	refused  *prometheus.CounterVec
}

func newSPAMetrics(reg *prometheus.Registry) *spaMetrics {
	m := &spaMetrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sesame", Name: "spa_accepted_total",
			Help: "SPA packets that passed verification (HMAC, decryption, digest, age, replay)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sesame", Name: "spa_refused_total",
			Help: "SPA packets refused, by reason (spa reasons, ports-not-allowed, other-ip)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.refused)
	}
	return m
}

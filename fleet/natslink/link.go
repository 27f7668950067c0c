// Package natslink is the fleet's transport (docs/design.md, "Fleet"): it
// moves opaque signed envelopes between the members of a fleet through a
// NATS JetStream cluster, and knows nothing of signatures or policy (the
// receiver checks every record with package fleet).
//
// Each group is a KV bucket, sesame_<fleet>_<group>, with history 1, a
// per-key TTL and a RePublish of every write to
// sesame.<fleet>.<group>.<member>.<id>. A member writes its records under
// the key "<member>.<id>" (the server's permissions let it write under its
// own name only) and receives live records through a plain subscription to
// the republished subjects: no consumer per host on the servers. On every
// (re)connect it subscribes first, then reads the bucket's current values
// (the catch-up): all of them after the link opens or when the bucket is
// another one (deleted and created again), else only those written after
// the last stream sequence up to which it has delivered every record
// (see resume). Delivery is at least once: the receiver dedups by id.
package natslink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sesame-knock/sesame/logevent"
)

// Config says which fleet and cluster a link joins.
type Config struct {
	Fleet   string   // fleet name
	Member  string   // this host's member name: it writes keys "<Member>.<id>"
	Receive []string // groups whose records are delivered to this host
	Publish []string // groups this host publishes to
	Servers []string // nats:// or tls:// URLs
	// Creds is a NATS credentials file ("" none): a user JWT and its nkey
	// seed (nsc's .creds), or an nkey seed alone (for nkey users of the
	// server's config, see docs/fleet/nats-server.conf).
	Creds string
	CA    string // PEM CA file for TLS, "" system roots
	Log   *slog.Logger
	// Now is the clock of the publisher's deadlines; nil is time.Now.
	Now func() time.Time
}

// Record is one record delivered to the host.
type Record struct {
	Group   string
	From    string // the member named by the key/subject (the writer the server allowed)
	ID      string // the record id named by the key/subject
	Data    []byte // the envelope bytes as stored
	CatchUp bool   // delivered by the catch-up after a (re)connect
	Seq     uint64 // stream sequence, for logs
	// Stored is the stream's timestamp of the record (when the cluster
	// accepted it); zero if the server did not say.
	Stored time.Time
}

// Status is a snapshot of the link.
type Status struct {
	Connected   bool
	Server      string    // connected URL (credentials redacted)
	Since       time.Time // of the last change of Connected
	LastRecord  time.Time // when the last record was delivered
	LastLag     time.Duration
	CatchingUp  bool
	CatchUps    int // catch-ups completed
	LastCatchUp time.Time

	Published     uint64        // records the cluster acknowledged
	PublishFailed uint64        // records given up at their deadline
	Dropped       uint64        // records refused by Publish: queue full
	Delivered     uint64        // records handed to deliver
	PublishAck    time.Duration // the last publish's ack latency
	// Malformed counts received messages whose subject or key names no
	// valid member and id: dropped, never delivered.
	Malformed uint64
	// Duplicates counts records not delivered again because the same
	// stream sequence of the same group was delivered just before.
	Duplicates uint64
}

// QueueSize bounds the records waiting to be published, per group.
const QueueSize = 4096

// Bucket settings used when the link creates a missing bucket.
const (
	// BucketMaxAge is the backstop TTL of every record (the per-key TTL
	// is not_after - now + 1 s).
	BucketMaxAge = 24 * time.Hour
	// MaxValueSize bounds a record in the bucket (fleet.MaxEnvelope).
	MaxValueSize = 4096
	// BucketMaxBytes bounds a bucket (with new writes refused when full):
	// some 16,000 records of the largest size, many more of a usual one.
	BucketMaxBytes = 64 << 20
)

// How long one request to the cluster may take, and the time between
// attempts to connect, bind a bucket or catch up (doubling, jittered):
// short at first, since a cluster that restarts elects its stream leaders
// within seconds and members should converge within seconds too.
//
// For fastWindow after a (re)connect, a bind request waits at most
// fastTimeout, and the wait between attempts to bind or catch up stops
// doubling at fastRetryMax: after every server restarted, the bucket's
// stream had a leader again 5.0 to 7.4 s after the start (bench/fleetsim, 1,000
// members), a time in which a server without a leader either says so
// after 500 ms (no meta leader yet) or does not answer at all (no stream
// leader yet), and the 2 s timeouts with a doubling wait left members
// idle for seconds after the stream answered. A stream leader answers a
// stream info in milliseconds; 1 s is the p99 publish ack of a loaded
// cluster (1,000 members, 100 grants/s). Each member then asks at most
// about once every 0.7 to 1.6 s (the 0.5 s error or the 1 s timeout,
// plus a wait of 0.19 to 0.63 s, jittered so that a thousand members
// spread out), i.e. at most some 1,400 stream info requests a second
// for 1,000 members during those seconds, each dropped or answered
// cheaply (a nats-server serves tens of thousands of requests a second);
// past fastWindow, a lasting failure (a permission, a lost quorum) is
// retried as before, up to every 10 s.
const (
	requestTimeout = 2 * time.Second
	bindRetryMin   = 250 * time.Millisecond
	bindRetryMax   = 10 * time.Second
	fastWindow     = 20 * time.Second
	fastTimeout    = time.Second
	fastRetryMax   = 500 * time.Millisecond
)

// retry paces the attempts of one step of the setup after a (re)connect
// (see fastWindow).
type retry struct {
	start time.Time
	delay time.Duration
}

func newRetry(start time.Time) *retry { return &retry{start: start, delay: bindRetryMin} }

func (r *retry) fast() bool { return time.Since(r.start) < fastWindow }

// timeout is how long the next request may take.
func (r *retry) timeout() time.Duration {
	if r.fast() {
		return fastTimeout
	}
	return requestTimeout
}

// next returns the wait before the next attempt (jittered) and doubles it.
func (r *retry) next() time.Duration {
	d := r.delay
	if r.fast() {
		d = min(d, fastRetryMax)
	}
	r.delay = min(r.delay*2, bindRetryMax)
	return jitter(d)
}

type pubReq struct {
	group, id string
	env       []byte
	notAfter  time.Time
}

type inItem struct {
	rec  Record
	live bool
	done func() // not a record: run in the deliverer, in order
}

// bucketState is a bound group bucket.
type bucketState struct {
	kv    jetstream.KeyValue
	ttlOK bool // the bucket allows per-key TTLs
	// The stream's creation time (which tells a bucket deleted and
	// created again from the one before) and last sequence, when bound.
	created time.Time
	lastSeq uint64
}

// resume is how far a receive group's records are known delivered, so
// that the catch-up after a reconnect reads only what came after. Every
// write to a group's stream takes the next sequence and is republished
// to the members, so the sequences delivered live follow each other; one
// missing (a live message lost, e.g. while the stream changed leader)
// holds done back until a catch-up reads it. It lives as long as the
// link: a new link (a daemon restart) catches up in full.
type resume struct {
	stream time.Time // the Created of the stream done counts in
	epoch  uint64    // bumped with stream: a catch-up of the one before no longer counts
	// done: every record of stream up to this sequence was delivered,
	// or no longer exists (expired); 0 none known.
	done  uint64
	above map[uint64]struct{} // sequences past done+1 delivered live (at most maxAbove)
}

// maxAbove bounds the sequences a resume holds past a gap (those beyond
// are read again by the next catch-up).
const maxAbove = 4096

// saw records that seq was delivered (or was nothing to deliver).
func (r *resume) saw(seq uint64) {
	switch {
	case seq == 0 || seq <= r.done:
	case seq == r.done+1:
		r.upTo(seq)
	case len(r.above) < maxAbove:
		if r.above == nil {
			r.above = map[uint64]struct{}{}
		}
		r.above[seq] = struct{}{}
	}
}

// upTo records that every sequence up to seq was delivered or is gone.
func (r *resume) upTo(seq uint64) {
	if seq <= r.done {
		return
	}
	r.done = seq
	for s := range r.above {
		if s <= r.done {
			delete(r.above, s)
		}
	}
	for {
		if _, ok := r.above[r.done+1]; !ok {
			return
		}
		delete(r.above, r.done+1)
		r.done++
	}
}

// bound starts counting in the stream just bound, whose last sequence
// was lastSeq when done was before: the same stream keeps its count;
// another (created at another time, or with fewer records than counted:
// restored from a backup) starts from nothing.
func (r *resume) bound(created time.Time, lastSeq, before uint64) {
	if created.Equal(r.stream) && lastSeq >= before {
		return
	}
	r.stream, r.epoch, r.done, r.above = created, r.epoch+1, 0, nil
}

// Link is a member's connection to the fleet.
type Link struct {
	cfg     Config
	log     *slog.Logger
	deliver func(Record)
	now     func() time.Time

	// One queue and one publisher per group, so that a group whose
	// bucket is unusable does not hold up the others' records.
	pubq map[string]chan pubReq
	kick map[string]chan struct{} // the group's bucket was bound: retry now
	in   chan inItem
	ev   chan connEvent
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	rl rateLog

	mu      sync.Mutex
	st      Status
	buckets map[string]bucketState
	resume  map[string]*resume // per receive group
	nc      *nats.Conn
}

type connEvent int

const (
	evConnected connEvent = iota
	evDisconnected
	evClosed
)

// Open validates cfg and starts the link: it returns at once and connects,
// and reconnects, in the background for as long as the link is open (a
// cluster that is down at the start is fine). deliver is called from one
// goroutine of the link, for each record in the order received; it must
// not block long, and must not call Close.
func Open(cfg Config, deliver func(Record)) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fleet link: %w", err)
	}
	if deliver == nil {
		return nil, errors.New("fleet link: no deliver function")
	}
	for _, f := range []struct{ what, path string }{{"credentials", cfg.Creds}, {"CA", cfg.CA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("fleet link: %s file: %w", f.what, err)
		}
	}
	l := &Link{
		cfg:     cfg,
		log:     cfg.Log,
		deliver: deliver,
		now:     cfg.Now,
		pubq:    map[string]chan pubReq{},
		kick:    map[string]chan struct{}{},
		in:      make(chan inItem, 1024),
		ev:      make(chan connEvent, 16),
		stop:    make(chan struct{}),
		buckets: map[string]bucketState{},
		resume:  map[string]*resume{},
	}
	for _, g := range cfg.Receive {
		l.resume[g] = &resume{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	for _, g := range cfg.Publish {
		l.pubq[g] = make(chan pubReq, QueueSize)
		l.kick[g] = make(chan struct{}, 1)
	}
	l.wg.Add(2 + len(cfg.Publish))
	go l.run()
	go l.deliverer()
	for _, g := range cfg.Publish {
		go l.publisher(g)
	}
	return l, nil
}

// Close stops the link and waits for its goroutines. Records still waiting
// to be published are abandoned (logged with their count).
func (l *Link) Close() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		for g, q := range l.pubq {
			if n := len(q); n > 0 {
				l.log.Warn(logevent.FleetPublishFailed, "group", g, "abandoned", n, "err", "the fleet link closed")
			}
		}
	})
}

// Status returns a snapshot of the link's state.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// Publish queues env to be written to group under the key
// "<Member>.<id>" and returns at once. It returns false, and queues
// nothing, if group is not one of cfg.Publish, id is not a record id, env
// is empty or larger than MaxValueSize, or the queue is full (counted in
// Status.Dropped); env is copied. The record is retried until one
// second before notAfter, then given up (logged as
// fleet-publish-failed). A record given up may still land later: a write
// that the cluster took but could not commit in time (no quorum) commits
// when the quorum is back; receivers refuse it past notAfter and its
// per-key TTL removes it.
func (l *Link) Publish(group, id string, env []byte, notAfter time.Time) bool {
	if !slices.Contains(l.cfg.Publish, group) || !validID(id) || len(env) == 0 || len(env) > MaxValueSize {
		return false
	}
	select {
	case <-l.stop:
		return false
	default:
	}
	select {
	case l.pubq[group] <- pubReq{group: group, id: id, env: bytes.Clone(env), notAfter: notAfter}:
		return true
	default:
		l.mu.Lock()
		l.st.Dropped++
		l.mu.Unlock()
		return false
	}
}

// run owns the connection: it connects, subscribes, and on every
// (re)connect binds the buckets and catches up, until Close.
func (l *Link) run() {
	defer l.wg.Done()
	delay := bindRetryMin
	for {
		nc, err := l.connect()
		if err != nil {
			l.logLimited(slog.LevelWarn, logevent.FleetDisconnected, logevent.FleetDisconnected, "err", err)
			select {
			case <-l.stop:
				return
			case <-time.After(jitter(delay)):
			}
			delay = min(delay*2, bindRetryMax)
			continue
		}
		delay = bindRetryMin
		if l.serve(nc) {
			return
		}
	}
}

// connect starts a connection that retries by itself.
func (l *Link) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("sesame " + l.cfg.Fleet + " " + l.cfg.Member),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.Timeout(requestTimeout),
		// No buffering while disconnected: a write is sent now or fails
		// now (and is retried), never flushed long after its attempt.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.NoCallbacksAfterClientClose(),
		nats.ConnectHandler(func(*nats.Conn) { l.event(evConnected) }),
		nats.ReconnectHandler(func(*nats.Conn) { l.event(evConnected) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			l.setConnected(false, "")
			l.logLimited(slog.LevelWarn, logevent.FleetDisconnected, logevent.FleetDisconnected, "err", errText(err))
			l.event(evDisconnected)
		}),
		nats.ClosedHandler(func(*nats.Conn) { l.event(evClosed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			l.logLimited(slog.LevelWarn, logevent.FleetDenied, logevent.FleetDenied, "err", err)
		}),
	}
	if l.cfg.Creds != "" {
		o, err := credsOption(l.cfg.Creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if l.cfg.CA != "" {
		opts = append(opts, nats.RootCAs(l.cfg.CA))
	}
	return nats.Connect(strings.Join(l.cfg.Servers, ","), opts...)
}

// credsOption reads a credentials file: a user JWT with its seed, or a
// seed alone.
func credsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if strings.Contains(string(b), "BEGIN NATS USER JWT") {
		return nats.UserCredentials(path), nil
	}
	o, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: neither a user JWT nor an nkey seed: %w", path, err)
	}
	return o, nil
}

func errText(err error) string {
	if err == nil {
		return "connection closed"
	}
	return err.Error()
}

// event passes a connection event to serve; when its queue is full, the
// events already queued will make serve look at the connection anyway.
func (l *Link) event(e connEvent) {
	select {
	case l.ev <- e:
	default:
	}
}

// serve subscribes on nc and sets the link up on every (re)connect. It
// returns true when the link is closed, false when nc was closed under it.
func (l *Link) serve(nc *nats.Conn) (stopped bool) {
	l.mu.Lock()
	l.nc = nc
	l.buckets = map[string]bucketState{}
	l.mu.Unlock()
	var setupWG sync.WaitGroup
	cancel := func() {}
	defer func() {
		cancel()
		nc.Close()
		setupWG.Wait()
		l.setConnected(false, "")
		l.mu.Lock()
		l.nc = nil
		l.buckets = map[string]bucketState{}
		l.mu.Unlock()
	}()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(requestTimeout))
	if err != nil {
		l.log.Error(logevent.FleetBucketError, "err", err)
		return l.wait(time.Second)
	}
	// Live records: subscribe before any catch-up, so that nothing
	// written in between is missed. The subscriptions outlive reconnects.
	for _, g := range l.cfg.Receive {
		prefix := SubjectPrefix(l.cfg.Fleet, g)
		sub, err := nc.Subscribe(prefix+">", func(m *nats.Msg) { l.live(g, prefix, m) })
		if err != nil {
			l.log.Error(logevent.FleetBucketError, "bucket", Bucket(l.cfg.Fleet, g), "err", fmt.Errorf("subscribe %s>: %w", prefix, err))
			return l.wait(time.Second)
		}
		_ = sub.SetPendingLimits(1<<16, 64<<20)
	}
	// ConnectHandler reports the first connection (immediate or not),
	// ReconnectHandler the others.
	for {
		select {
		case <-l.stop:
			return true
		case e := <-l.ev:
			switch e {
			case evClosed:
				return false
			case evDisconnected:
				cancel()
				cancel = func() {}
			case evConnected:
				if !nc.IsConnected() {
					continue
				}
				cancel()
				l.setConnected(true, nc.ConnectedUrlRedacted())
				l.logLimited(slog.LevelInfo, logevent.FleetConnected, logevent.FleetConnected, "server", nc.ConnectedUrlRedacted())
				ctx, c := context.WithCancel(context.Background())
				cancel = c
				setupWG.Add(1)
				go func() {
					defer setupWG.Done()
					l.setup(ctx, nc, js)
				}()
			}
		}
	}
}

// jitter returns d give or take a quarter, so that a thousand members
// retrying after a cluster restart do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

// wait waits d or until Close; it returns true on Close.
func (l *Link) wait(d time.Duration) bool {
	select {
	case <-l.stop:
		return true
	case <-time.After(d):
		return false
	}
}

func (l *Link) setConnected(up bool, server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Connected != up {
		l.st.Since = time.Now()
	}
	l.st.Connected = up
	l.st.Server = server
	if !up {
		l.st.CatchingUp = false
	}
}

// setup binds every group's bucket (creating it if missing and allowed),
// then catches up on the receive groups. It retries until ctx ends (a
// disconnect, a newer connect, or Close).
func (l *Link) setup(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) {
	start := time.Now()
	groups := l.cfg.groups()
	var wg sync.WaitGroup
	l.mu.Lock()
	l.st.CatchingUp = len(l.cfg.Receive) > 0
	l.mu.Unlock()
	caughtUp := make([]bool, len(groups))
	bound := make([]bucketState, len(groups))
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// done before the stream's last sequence is read: a stream
			// that has fewer was not the one counted.
			var before uint64
			l.mu.Lock()
			if r := l.resume[g]; r != nil {
				before = r.done
			}
			l.mu.Unlock()
			bs, ok := l.bind(ctx, nc, js, g, start)
			if !ok {
				return
			}
			l.mu.Lock()
			l.buckets[g] = bs
			if r := l.resume[g]; r != nil {
				r.bound(bs.created, bs.lastSeq, before)
			}
			l.mu.Unlock()
			select {
			case l.kick[g] <- struct{}{}:
			default:
			}
			if slices.Contains(l.cfg.Receive, g) {
				bound[i] = bs
				caughtUp[i] = l.catchUp(ctx, g, bs, start)
			} else {
				caughtUp[i] = true
			}
		}()
	}
	wg.Wait()
	for _, ok := range caughtUp {
		if !ok {
			return
		}
	}
	if len(l.cfg.Receive) > 0 {
		// Done once the deliverer has handed over every caught-up record.
		l.after(ctx, func() {
			l.mu.Lock()
			l.st.CatchingUp = false
			l.st.CatchUps++
			l.st.LastCatchUp = time.Now()
			l.mu.Unlock()
		})
	}
	// The second pass (see recheckAfter), quietly: no status change.
	select {
	case <-ctx.Done():
		return
	case <-time.After(jitter(recheckAfter)):
	}
	for i, g := range groups {
		if bound[i].kv != nil {
			l.catchUp(ctx, g, bound[i], start)
		}
	}
}

// recheckAfter is when a second catch-up follows the first, reading from
// where that one ended. The watch's consumer may sit on a replica that
// restarted and has not stored yet what the others committed while it
// was down (fleettest's TestResumeAfterRestart saw it: a catch-up on the
// restarted server ended before the records written meanwhile); that
// replica catches up within a second or so. The pass creates one more
// consumer per receive group and reads only what the first one did not
// deliver and no live message brought.
const recheckAfter = 3 * time.Second

// after runs f in the deliverer once it has delivered every record queued
// before.
func (l *Link) after(ctx context.Context, f func()) {
	select {
	case l.in <- inItem{done: f}:
	case <-ctx.Done():
	}
}

// bind returns group's bucket, creating it when it is missing (if the
// credentials allow). It retries, with a growing delay (see fastWindow:
// start is the connect's time), until ctx ends.
func (l *Link) bind(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, group string, start time.Time) (bucketState, bool) {
	bucket := Bucket(l.cfg.Fleet, group)
	r := newRetry(start)
	for {
		bs, err := l.bindOnce(ctx, nc, js, group, r.timeout())
		if err == nil {
			return bs, true
		}
		if ctx.Err() != nil {
			return bucketState{}, false
		}
		l.logLimited(slog.LevelError, logevent.FleetBucketError+"/"+group, logevent.FleetBucketError, "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
			return bucketState{}, false
		case <-time.After(r.next()):
		}
	}
}

// bucketError says what failed and which permission it needs.
type bucketError struct {
	op   string
	need string
	err  error
}

func (e *bucketError) Error() string {
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, nats.ErrTimeout) {
		// The server does not answer a request it refuses by permission,
		// nor one while JetStream has no leader (a cluster restarting).
		return fmt.Sprintf("%s: no answer (JetStream may have no leader yet; or the permission is missing: this needs %s)", e.op, e.need)
	}
	return fmt.Sprintf("%s: %v (this needs %s)", e.op, e.err, e.need)
}

func (e *bucketError) Unwrap() error { return e.err }

// bindOnce binds group's bucket: on a reconnect of the same connection,
// the handle bound before needs only the bucket's status (one request).
func (l *Link) bindOnce(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, group string, timeout time.Duration) (bucketState, error) {
	bucket, stream := Bucket(l.cfg.Fleet, group), Stream(l.cfg.Fleet, group)
	l.mu.Lock()
	kv := l.buckets[group].kv
	l.mu.Unlock()
	if kv == nil {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		kv, err = js.KeyValue(rctx, bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = l.create(ctx, nc, js, group)
		}
		if err != nil {
			if _, ok := errors.AsType[*bucketError](err); ok {
				return bucketState{}, err
			}
			return bucketState{}, &bucketError{op: "bind bucket " + bucket, need: "publish permission on $JS.API.STREAM.INFO." + stream, err: err}
		}
	}
	sctx, cancel2 := context.WithTimeout(ctx, timeout)
	defer cancel2()
	st, err := kv.Status(sctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Deleted since it was bound: bind (or create) it again.
		l.mu.Lock()
		delete(l.buckets, group)
		l.mu.Unlock()
	}
	if err != nil {
		return bucketState{}, &bucketError{op: "read bucket " + bucket, need: "publish permission on $JS.API.STREAM.INFO." + stream, err: err}
	}
	bs := bucketState{kv: kv}
	if kst, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		info := kst.StreamInfo()
		bs.created, bs.lastSeq = info.Created, info.State.LastSeq
		cfg := info.Config
		bs.ttlOK = cfg.AllowMsgTTL
		if cfg.AllowRollup {
			l.logLimited(slog.LevelError, logevent.FleetBucketError+"/rollup/"+group, logevent.FleetBucketError, "bucket", bucket, "err",
				"the bucket allows roll-ups: any member can wipe every live record with a Nats-Rollup header; recreate it without (see docs/fleet/nats-server.conf)")
		}
		if !republishes(cfg.RePublish, bucket, SubjectPrefix(l.cfg.Fleet, group)) && slices.Contains(l.cfg.Receive, group) {
			l.logLimited(slog.LevelError, logevent.FleetBucketError+"/"+group, logevent.FleetBucketError, "bucket", bucket, "err",
				fmt.Sprintf("the bucket does not republish its records to %s> : live records will not arrive (only catch-ups); recreate it with RePublish $KV.%s.> -> %s>", SubjectPrefix(l.cfg.Fleet, group), bucket, SubjectPrefix(l.cfg.Fleet, group)))
		}
	}
	return bs, nil
}

// republishes reports whether rp maps the bucket's keys to prefix.
func republishes(rp *jetstream.RePublish, bucket, prefix string) bool {
	return rp != nil && rp.Source == "$KV."+bucket+".>" && rp.Destination == prefix+">"
}

// create creates group's bucket.
func (l *Link) create(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, group string) (jetstream.KeyValue, error) {
	bucket, stream := Bucket(l.cfg.Fleet, group), Stream(l.cfg.Fleet, group)
	replicas := Replicas(nc.ConnectedClusterName(), len(nc.Servers()))
	cfg := StreamConfig(l.cfg.Fleet, group, replicas)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	// A server before 2.11 ignores AllowMsgTTL: bind sees it off and
	// writes without per-key TTLs (BucketMaxAge is the backstop).
	_, err := js.CreateStream(rctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		err = nil // another member created it first
	}
	if err == nil {
		kv, err := js.KeyValue(rctx, bucket)
		if err == nil {
			l.log.Info(logevent.FleetBucketCreated, "bucket", bucket, "replicas", replicas, "ttl", cfg.MaxAge, "republish", cfg.RePublish.Destination)
		}
		return kv, err
	}
	if err != nil {
		return nil, &bucketError{
			op:   "create missing bucket " + bucket,
			need: "publish permission on $JS.API.INFO and $JS.API.STREAM.CREATE." + stream + " (an admin's), or the bucket created beforehand as docs/fleet/nats-server.conf shows",
			err:  err,
		}
	}
	return nil, err
}

// Replicas is how many replicas a new bucket gets: 3 on a cluster that
// has at least 3 servers, else 1.
func Replicas(cluster string, servers int) int {
	if cluster != "" && servers >= 3 {
		return 3
	}
	return 1
}

// StreamConfig is the configuration of a group's bucket (the stream
// behind it), as the link creates it and as an admin may create it
// beforehand: what nats.go's KeyValueConfig makes, with history 1, a
// per-key TTL and a RePublish, except that roll-ups are refused. With
// roll-ups, any member could wipe the whole bucket, every other member's
// live records included, by writing under its own name with the header
// "Nats-Rollup: all"; the KV features that need them (Purge, and the
// markers that expired keys leave) are not used. MaxBytes bounds what a
// member that is taken over can fill.
func StreamConfig(fleet, group string, replicas int) jetstream.StreamConfig {
	bucket := Bucket(fleet, group)
	return jetstream.StreamConfig{
		Name:              Stream(fleet, group),
		Description:       "sesame fleet " + fleet + ", group " + group + ": signed grant records",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          BucketMaxBytes,
		MaxAge:            BucketMaxAge,
		MaxMsgSize:        MaxValueSize,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       false,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		AllowMsgTTL:       true,
		RePublish: &jetstream.RePublish{
			Source:      "$KV." + bucket + ".>",
			Destination: SubjectPrefix(fleet, group) + ">",
		},
	}
}

// catchUp delivers the bucket's current values written after the
// group's resume point (all of them when there is none), then stops. It
// returns false if ctx ended first.
func (l *Link) catchUp(ctx context.Context, group string, bs bucketState, connected time.Time) bool {
	start := time.Now()
	r := newRetry(connected)
	for {
		// The watch's consumer is created with requestTimeout, also in
		// the fast window: a thousand members that bind together create
		// a thousand consumers at once (over 1 s in bench/fleetsim), and a
		// creation given up is made again while the first one lingers
		// on the servers.
		n, from, err := l.catchUpOnce(ctx, group, bs, requestTimeout)
		if err == nil {
			l.after(ctx, func() {
				l.logLimited(slog.LevelInfo, logevent.FleetCatchUp+"/"+group, logevent.FleetCatchUp, "group", group, "records", n, "from_seq", from, "took", time.Since(start).Round(time.Millisecond))
			})
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.logLimited(slog.LevelError, logevent.FleetBucketError+"/"+group, logevent.FleetBucketError, "bucket", Bucket(l.cfg.Fleet, group), "err",
			&bucketError{op: "catch up", need: "publish permission on $JS.API.CONSUMER.CREATE." + Stream(l.cfg.Fleet, group) + ".> and subscribe permission on _INBOX.>", err: err})
		select {
		case <-ctx.Done():
			return false
		case <-time.After(r.next()):
		}
	}
}

// catchUpOnce reads the bucket from the group's resume point: from the
// sequence after done (in order: the watch starts at that sequence),
// or every current value when done is 0. Each record read moves done on
// (so that an attempt cut short is resumed where it stopped), but not the
// stream's last sequence when bound: the watch's consumer may sit on a
// replica that is behind, and what it has not stored yet must be read
// again by the next catch-up. It returns the records delivered and the
// first sequence asked for.
func (l *Link) catchUpOnce(ctx context.Context, group string, bs bucketState, timeout time.Duration) (n int, from uint64, err error) {
	l.mu.Lock()
	rs := l.resume[group]
	from, epoch := rs.done+1, rs.epoch
	l.mu.Unlock()
	// upTo moves done on unless the stream changed in between.
	upTo := func(seq uint64) {
		l.mu.Lock()
		if rs.epoch == epoch {
			rs.upTo(seq)
		}
		l.mu.Unlock()
	}
	// Even when the bound status says that nothing was written since,
	// the watch runs: the status may come from a replica that restarted
	// and has not caught up yet (it answers while the group has no
	// leader). Past the last sequence, the watch is empty at once.
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if from > 1 {
		opts = append(opts, jetstream.ResumeFromRevision(from))
	}
	// The watcher lives as long as its context: cancel it only if the
	// watch cannot start in time, and when done.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(timeout, cancel)
	w, err := bs.kv.WatchAll(wctx, opts...)
	if !timer.Stop() && err == nil {
		_ = w.Stop()
		err = errors.New("the watch timed out")
	}
	if err != nil {
		return 0, from, err
	}
	defer func() {
		_ = w.Stop()
		// The watcher's callback holds its lock while it sends: drain
		// until its channel closes so that it can finish.
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case _, ok := <-w.Updates():
				if !ok {
					return
				}
			case <-t.C:
				return
			}
		}
	}()
	idle := time.NewTimer(requestTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return n, from, ctx.Err()
		case <-idle.C:
			return n, from, errors.New("catch-up stalled: no value for 2s")
		case e, ok := <-w.Updates():
			if !ok {
				return n, from, errors.New("catch-up watcher closed")
			}
			if e == nil { // the initial values are done
				return n, from, nil
			}
			idle.Reset(requestTimeout)
			if e.Operation() != jetstream.KeyValuePut || len(e.Value()) == 0 {
				upTo(e.Revision())
				continue
			}
			member, id, ok := ParseKey(e.Key())
			if !ok {
				l.malformed()
				upTo(e.Revision())
				continue
			}
			rec := Record{Group: group, From: member, ID: id, Data: e.Value(), CatchUp: true, Seq: e.Revision(), Stored: e.Created()}
			select {
			case l.in <- inItem{rec: rec}:
				n++
				upTo(e.Revision())
			case <-ctx.Done():
				return n, from, ctx.Err()
			}
		}
	}
}

// live handles a republished record.
func (l *Link) live(group, prefix string, m *nats.Msg) {
	seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" || len(m.Data) == 0 {
		l.sawLive(group, seq)
		return // a delete, purge or expiry marker
	}
	from, id, ok := parseSubject(prefix, m.Subject)
	if !ok {
		l.malformed()
		l.sawLive(group, seq)
		return
	}
	rec := Record{Group: group, From: from, ID: id, Data: m.Data, Seq: seq}
	if ts := m.Header.Get(jetstream.TimeStampHeaer); ts != "" {
		rec.Stored, _ = time.Parse(time.RFC3339Nano, ts)
	}
	select {
	case l.in <- inItem{rec: rec, live: true}:
		l.sawLive(group, seq)
	case <-l.stop:
	}
}

// sawLive moves group's resume point on with a sequence delivered live.
func (l *Link) sawLive(group string, seq uint64) {
	l.mu.Lock()
	if r := l.resume[group]; r != nil {
		r.saw(seq)
	}
	l.mu.Unlock()
}

func (l *Link) malformed() {
	l.mu.Lock()
	l.st.Malformed++
	l.mu.Unlock()
}

// deliverer hands records to deliver, one at a time, dropping a record
// whose group and stream sequence were delivered just before.
func (l *Link) deliverer() {
	defer l.wg.Done()
	recent := map[string]*seqRing{}
	for {
		var it inItem
		select {
		case <-l.stop:
			return
		case it = <-l.in:
		}
		if it.done != nil {
			it.done()
			continue
		}
		r := recent[it.rec.Group]
		if r == nil {
			r = newSeqRing(4096)
			recent[it.rec.Group] = r
		}
		if it.rec.Seq != 0 && !r.add(it.rec.Seq, Key(it.rec.From, it.rec.ID)) {
			l.mu.Lock()
			l.st.Duplicates++
			l.mu.Unlock()
			continue
		}
		l.deliver(it.rec)
		now := time.Now()
		l.mu.Lock()
		l.st.Delivered++
		l.st.LastRecord = now
		if it.live && !it.rec.Stored.IsZero() {
			l.st.LastLag = now.Sub(it.rec.Stored)
		}
		l.mu.Unlock()
	}
}

// seqRing remembers the last n (sequence, key) pairs added. A duplicate
// has the same sequence and the same key: a bucket that was deleted and
// created again numbers its records from 1 again, and those are new.
type seqRing struct {
	set  map[uint64]string // sequence -> member.id
	ring []uint64
	next int
}

func newSeqRing(n int) *seqRing {
	return &seqRing{set: make(map[uint64]string, n), ring: make([]uint64, n)}
}

// add remembers seq with its key and reports whether the pair was new.
func (r *seqRing) add(seq uint64, key string) bool {
	if k, ok := r.set[seq]; ok {
		if k == key {
			return false
		}
		r.set[seq] = key // the same sequence in a new stream
		return true
	}
	if old := r.ring[r.next]; old != 0 {
		delete(r.set, old)
	}
	r.ring[r.next] = seq
	r.next = (r.next + 1) % len(r.ring)
	r.set[seq] = key
	return true
}

// publisher writes group's queued records, one at a time, each retried
// until its give-up time.
func (l *Link) publisher(group string) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case r := <-l.pubq[group]:
			if !l.publish(r) {
				return
			}
		}
	}
}

var errNotReady = errors.New("not connected, or the group's bucket is not bound yet")

// publish writes one record; it returns false on Close.
func (l *Link) publish(r pubReq) bool {
	key := Key(l.cfg.Member, r.id)
	var lastErr error
	for n := 1; ; n++ {
		ttl, ok := keyTTL(l.now(), r.notAfter)
		if !ok {
			l.publishFailed(r, lastErr, n-1)
			return true
		}
		l.mu.Lock()
		bs, bound := l.buckets[r.group]
		l.mu.Unlock()
		if bound {
			var opts []jetstream.KVCreateOpt
			if bs.ttlOK {
				opts = append(opts, jetstream.KeyTTL(ttl))
			}
			ctx, cancel := context.WithTimeout(context.Background(), min(requestTimeout, giveUpAt(r.notAfter).Sub(l.now())))
			go func() { // Close cancels the attempt
				select {
				case <-l.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			start := time.Now()
			_, err := bs.kv.Create(ctx, key, r.env, opts...)
			took := time.Since(start)
			cancel()
			// A key that exists was written by an earlier attempt whose ack
			// was lost (ids are random and keys carry this member's name).
			if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
				l.mu.Lock()
				l.st.Published++
				l.st.PublishAck = took
				l.mu.Unlock()
				return true
			}
			lastErr = err
		} else {
			lastErr = errNotReady
		}
		wait, ok := retryWait(n, l.now(), r.notAfter)
		if !ok {
			l.publishFailed(r, lastErr, n)
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-l.stop:
			t.Stop()
			l.log.Warn(logevent.FleetPublishFailed, "group", r.group, "id", r.id, "err", "the fleet link closed")
			return false
		case <-l.kick[r.group]:
		case <-t.C:
		}
		t.Stop()
	}
}

func (l *Link) publishFailed(r pubReq, err error, attempts int) {
	if err == nil {
		err = errors.New("its deadline passed before it could be sent")
	}
	l.mu.Lock()
	l.st.PublishFailed++
	l.mu.Unlock()
	l.logLimited(slog.LevelWarn, logevent.FleetPublishFailed, logevent.FleetPublishFailed, "group", r.group, "id", r.id, "err", err, "attempts", attempts)
}

// logLimited logs msg at level unless key is over its rate; the first
// line let through after some were held back says how many.
func (l *Link) logLimited(level slog.Level, key, msg string, args ...any) {
	ok, n := l.rl.allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// rateLog lets through, per key, bursts of 10 lines and then one line
// every 6 s, and counts what it holds back (reported as "suppressed" by
// the next line let through).
type rateLog struct {
	mu sync.Mutex
	m  map[string]*rateState
}

type rateState struct {
	tokens     float64
	last       time.Time
	suppressed int
}

const (
	rateBurst = 10
	rateEvery = 6 * time.Second
)

func (r *rateLog) allow(key string) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*rateState{}
	}
	now := time.Now()
	s := r.m[key]
	if s == nil {
		s = &rateState{tokens: rateBurst, last: now}
		r.m[key] = s
	}
	s.tokens = min(rateBurst, s.tokens+now.Sub(s.last).Seconds()/rateEvery.Seconds())
	s.last = now
	if s.tokens < 1 {
		s.suppressed++
		return false, 0
	}
	s.tokens--
	n := s.suppressed
	s.suppressed = 0
	return true, n
}

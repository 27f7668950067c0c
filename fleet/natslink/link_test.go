package natslink

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// The link's network side is tested against a real 3-node cluster in the
// nested module fleettest (the server stays out of this go.mod); these
// tests cover what needs no server.

const testID = "9f1c0123456789abcdef0123456789ab"

func validConfig() Config {
	return Config{Fleet: "prod", Member: "bastion-1", Receive: []string{"web"}, Publish: []string{"web", "db"}, Servers: []string{"nats://127.0.0.1:4222"}}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no fleet", func(c *Config) { c.Fleet = "" }, "fleet name"},
		{"fleet with a dot", func(c *Config) { c.Fleet = "a.b" }, "fleet name"},
		{"fleet wildcard", func(c *Config) { c.Fleet = ">" }, "fleet name"},
		{"member with a dot", func(c *Config) { c.Member = "web.1" }, "member name"},
		{"member starts with -", func(c *Config) { c.Member = "-x" }, "member name"},
		{"member too long", func(c *Config) { c.Member = strings.Repeat("a", 65) }, "member name"},
		{"group wildcard", func(c *Config) { c.Receive = []string{"*"} }, "receive group"},
		{"group twice", func(c *Config) { c.Publish = []string{"web", "web"} }, "listed twice"},
		{"no group", func(c *Config) { c.Receive, c.Publish = nil, nil }, "no group"},
		{"no server", func(c *Config) { c.Servers = nil }, "no NATS server"},
		{"http server", func(c *Config) { c.Servers = []string{"http://127.0.0.1:4222"} }, "nats:// or tls://"},
		{"bare scheme", func(c *Config) { c.Servers = []string{"nats://"} }, "nats:// or tls://"},
	} {
		c := validConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	c := validConfig()
	c.Servers = []string{"tls://nats.example.net:4222", "nats://u:p@192.0.2.1:4222"}
	if err := c.Validate(); err != nil {
		t.Errorf("tls and userinfo URLs: %v", err)
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	got := strings.Join(validConfig().groups(), ",")
	if got != "web,db" {
		t.Errorf("groups() = %s, want web,db", got)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if got := Bucket("prod", "web"); got != "sesame_prod_web" {
		t.Errorf("Bucket = %s", got)
	}
	if got := Stream("prod", "web"); got != "KV_sesame_prod_web" {
		t.Errorf("Stream = %s", got)
	}
	if got := SubjectPrefix("prod", "web") + Key("bastion-1", testID); got != "sesame.prod.web.bastion-1."+testID {
		t.Errorf("subject = %s", got)
	}
	c := StreamConfig("prod", "web", 3)
	if c.Name != "KV_sesame_prod_web" || len(c.Subjects) != 1 || c.Subjects[0] != "$KV.sesame_prod_web.>" ||
		c.MaxMsgsPerSubject != 1 || c.Replicas != 3 || c.MaxMsgSize != MaxValueSize || c.MaxAge != BucketMaxAge ||
		c.AllowRollup || !c.AllowMsgTTL || !c.DenyDelete || c.SubjectDeleteMarkerTTL != 0 || c.RePublish == nil ||
		c.RePublish.Source != "$KV.sesame_prod_web.>" || c.RePublish.Destination != "sesame.prod.web.>" {
		t.Errorf("StreamConfig = %+v", c)
	}
	for _, tc := range []struct {
		cluster string
		servers int
		want    int
	}{{"", 3, 1}, {"c", 1, 1}, {"c", 2, 1}, {"c", 3, 3}, {"c", 5, 3}} {
		if got := Replicas(tc.cluster, tc.servers); got != tc.want {
			t.Errorf("Replicas(%q, %d) = %d, want %d", tc.cluster, tc.servers, got, tc.want)
		}
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	m, id, ok := ParseKey("bastion-1." + testID)
	if !ok || m != "bastion-1" || id != testID {
		t.Fatalf("ParseKey = %q %q %v", m, id, ok)
	}
	for _, k := range []string{
		"", "bastion-1", "bastion-1.", "." + testID,
		"bastion-1." + strings.ToUpper(testID),      // upper-case hex
		"bastion-1." + testID[:31],                  // short id
		"bastion-1." + testID + "0",                 // long id
		"bastion-1." + testID + ".x",                // a third token
		"a.b." + testID,                             // member with a dot
		"_x." + testID,                              // member starts with _
		"*." + testID, ">." + testID, "bastion-1.>", // wildcards
		strings.Repeat("m", 65) + "." + testID,
	} {
		if m, id, ok := ParseKey(k); ok {
			t.Errorf("ParseKey(%q) = %q %q, want refused", k, m, id)
		}
	}
	prefix := SubjectPrefix("prod", "web")
	if m, id, ok := parseSubject(prefix, prefix+"web-1."+testID); !ok || m != "web-1" || id != testID {
		t.Errorf("parseSubject = %q %q %v", m, id, ok)
	}
	for _, s := range []string{
		"sesame.prod.db.web-1." + testID,   // another group
		"sesame.other.web.web-1." + testID, // another fleet
		"sesame.prod.web.web-1",
		"sesame.prod.web.web-1." + testID + ".x",
	} {
		if _, _, ok := parseSubject(prefix, s); ok {
			t.Errorf("parseSubject(%q) accepted", s)
		}
	}
}

func TestKeyTTL(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_800_000_000_000)
	for _, tc := range []struct {
		left time.Duration // not_after - now
		want time.Duration
		ok   bool
	}{
		{30 * time.Second, 31 * time.Second, true},
		{30*time.Second + time.Millisecond, 32 * time.Second, true}, // rounded up
		{1001 * time.Millisecond, 3 * time.Second, true},
		{time.Second, 0, false}, // at its give-up time
		{500 * time.Millisecond, 0, false},
		{-time.Second, 0, false},
	} {
		got, ok := keyTTL(now, now.Add(tc.left))
		if got != tc.want || ok != tc.ok {
			t.Errorf("keyTTL(left %v) = %v %v, want %v %v", tc.left, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryWait(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_800_000_000_000)
	notAfter := now.Add(30 * time.Second)
	want := []time.Duration{50, 100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		got, ok := retryWait(i+1, now, notAfter)
		if !ok || got != w*time.Millisecond {
			t.Errorf("retryWait(%d) = %v %v, want %v", i+1, got, ok, w*time.Millisecond)
		}
	}
	// The wait never reaches past the give-up time (not_after - 1 s).
	if got, ok := retryWait(1, notAfter.Add(-1050*time.Millisecond), notAfter); ok {
		t.Errorf("retryWait at 50 ms before giving up = %v, want none", got)
	}
	if got, ok := retryWait(1, notAfter.Add(-1051*time.Millisecond), notAfter); !ok || got != 50*time.Millisecond {
		t.Errorf("retryWait at 51 ms before giving up = %v %v, want 50ms", got, ok)
	}
	if _, ok := retryWait(7, notAfter.Add(-2*time.Second), notAfter); ok {
		t.Error("a 2 s wait 1 s before giving up: want none")
	}
	// A simulated record under a cluster that never answers: attempts
	// stop before the give-up time and the clock never passes it.
	clock, attempts := now, 0
	for {
		attempts++
		w, ok := retryWait(attempts, clock, notAfter)
		if !ok {
			break
		}
		clock = clock.Add(w)
	}
	if !clock.Before(giveUpAt(notAfter)) || clock.Before(giveUpAt(notAfter).Add(-backoffMax)) || attempts < 10 {
		t.Errorf("gave up at %v before not_after after %d attempts", notAfter.Sub(clock), attempts)
	}
}

func TestSeqRing(t *testing.T) {
	t.Parallel()
	r := newSeqRing(3)
	for _, s := range []uint64{1, 2, 3} {
		if !r.add(s, "a."+testID) {
			t.Fatalf("add(%d) not new", s)
		}
	}
	if r.add(2, "a."+testID) {
		t.Error("add(2) twice: new")
	}
	// The same sequence with another key: a bucket created anew.
	if !r.add(2, "b."+testID) {
		t.Error("sequence 2 of another record: not new")
	}
	if r.add(2, "b."+testID) {
		t.Error("add(2, b) twice: new")
	}
	r.add(4, "a."+testID) // evicts 1
	if !r.add(1, "a."+testID) {
		t.Error("1 was evicted: want new")
	}
}

func TestRateLog(t *testing.T) {
	t.Parallel()
	var r rateLog
	for i := range rateBurst {
		if ok, _ := r.allow("a"); !ok {
			t.Fatalf("line %d of the burst held back", i)
		}
	}
	for range 5 {
		if ok, _ := r.allow("a"); ok {
			t.Fatal("past the burst: let through")
		}
	}
	if ok, _ := r.allow("b"); !ok {
		t.Error("another key held back")
	}
	r.m["a"].last = r.m["a"].last.Add(-rateEvery) // one token's worth of time
	if ok, n := r.allow("a"); !ok || n != 5 {
		t.Errorf("after %v: allow = %v, suppressed %d, want true, 5", rateEvery, ok, n)
	}
}

// TestOpenOffline: Open returns at once with no server up, Publish queues
// (and refuses past the queue's bound or for a group it does not publish
// to), and Close joins everything.
func TestOpenOffline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := validConfig()
	cfg.Servers = []string{"nats://" + addr}
	if _, err := Open(cfg, nil); err == nil {
		t.Error("Open with no deliver: no error")
	}
	bad := cfg
	bad.Creds = t.TempDir() + "/missing.creds"
	if _, err := Open(bad, func(Record) {}); err == nil {
		t.Error("Open with a missing creds file: no error")
	}
	bad = cfg
	bad.Member = ""
	if _, err := Open(bad, func(Record) {}); err == nil {
		t.Error("Open with no member: no error")
	}
	start := time.Now()
	l, err := Open(cfg, func(Record) { t.Error("delivered with no server") })
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %v", d)
	}
	notAfter := time.Now().Add(time.Hour)
	if l.Publish("other", testID, []byte("x"), notAfter) {
		t.Error("Publish to a group not in Publish: queued")
	}
	if l.Publish("web", "not-an-id", []byte("x"), notAfter) {
		t.Error("Publish with a bad id: queued")
	}
	if l.Publish("web", testID, make([]byte, MaxValueSize+1), notAfter) || l.Publish("web", testID, nil, notAfter) {
		t.Error("Publish of an oversized or empty envelope: queued")
	}
	queued := 0
	for range QueueSize + 10 {
		if l.Publish("web", testID, []byte("x"), notAfter) {
			queued++
		}
	}
	// One record may be taken by the publisher, which waits for a
	// connection.
	if queued < QueueSize || queued > QueueSize+1 {
		t.Errorf("queued %d, want %d or %d", queued, QueueSize, QueueSize+1)
	}
	st := l.Status()
	if st.Connected || st.Dropped != uint64(QueueSize+10-queued) {
		t.Errorf("status %+v: want not connected, %d dropped", st, QueueSize+10-queued)
	}
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if l.Publish("web", testID, []byte("x"), notAfter) {
		t.Error("Publish after Close: queued")
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := jitter(time.Second)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 750*time.Millisecond || hi > 1250*time.Millisecond || hi-lo < 250*time.Millisecond {
		t.Errorf("jitter(1s) in [%v, %v], want spread within [750ms, 1.25s]", lo, hi)
	}
}

func TestBucketError(t *testing.T) {
	t.Parallel()
	e := &bucketError{op: "bind bucket b", need: "X", err: context.DeadlineExceeded}
	if s := e.Error(); !strings.Contains(s, "no leader") || !strings.Contains(s, "needs X") || !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("timeout: %q", s)
	}
	e.err = errors.New("boom")
	if s := e.Error(); !strings.Contains(s, "boom") || !strings.Contains(s, "needs X") {
		t.Errorf("other: %q", s)
	}
}

// TestResumePoint: done moves on only over sequences that follow each
// other (a gap holds it until the catch-up reads past it), and another
// stream, or the same one with fewer records than counted, starts over.
func TestResumePoint(t *testing.T) {
	var r resume
	t0 := time.Unix(1700000000, 0)
	r.bound(t0, 0, 0)
	if r.done != 0 || r.epoch != 1 {
		t.Fatalf("first bind: done %d epoch %d, want 0 and 1", r.done, r.epoch)
	}
	for _, s := range []uint64{1, 2, 3, 5, 6, 2} {
		r.saw(s)
	}
	if r.done != 3 {
		t.Errorf("after 1 2 3 5 6: done %d, want 3 (4 is missing)", r.done)
	}
	r.saw(4)
	if r.done != 6 || len(r.above) != 0 {
		t.Errorf("after 4 came: done %d above %v, want 6 and none", r.done, r.above)
	}
	r.saw(9)
	r.upTo(8) // a catch-up read up to 8
	if r.done != 9 {
		t.Errorf("catch-up to 8 with 9 seen: done %d, want 9", r.done)
	}
	r.bound(t0, 12, 9) // the same stream, more records
	if r.done != 9 || r.epoch != 1 {
		t.Errorf("same stream bound again: done %d epoch %d, want 9 and 1", r.done, r.epoch)
	}
	r.bound(t0, 5, 9) // fewer than counted: restored from a backup
	if r.done != 0 || r.epoch != 2 {
		t.Errorf("stream with fewer records: done %d epoch %d, want 0 and 2", r.done, r.epoch)
	}
	r.saw(1)
	r.saw(3)
	r.bound(t0.Add(time.Second), 3, 1) // deleted and created again
	if r.done != 0 || r.epoch != 3 || len(r.above) != 0 {
		t.Errorf("another stream: done %d epoch %d above %v, want 0, 3, none", r.done, r.epoch, r.above)
	}
	for s := range uint64(maxAbove + 10) {
		r.saw(s + 2) // 1 never comes
	}
	if len(r.above) != maxAbove {
		t.Errorf("%d sequences held past a gap, want at most %d", len(r.above), maxAbove)
	}
}

// TestRetryPace: within fastWindow of the connect a request waits at
// most fastTimeout and attempts at most about fastRetryMax apart;
// afterwards the timeout is requestTimeout and the wait doubles to
// bindRetryMax.
func TestRetryPace(t *testing.T) {
	r := newRetry(time.Now())
	if r.timeout() != fastTimeout {
		t.Errorf("timeout after a connect %v, want %v", r.timeout(), fastTimeout)
	}
	for range 10 {
		if d := r.next(); d > fastRetryMax+fastRetryMax/4 {
			t.Fatalf("wait %v within the fast window, want at most %v", d, fastRetryMax+fastRetryMax/4)
		}
	}
	old := newRetry(time.Now().Add(-fastWindow))
	if old.timeout() != requestTimeout {
		t.Errorf("timeout past the fast window %v, want %v", old.timeout(), requestTimeout)
	}
	var d time.Duration
	for range 10 {
		d = old.next()
	}
	if d < bindRetryMax-bindRetryMax/4 {
		t.Errorf("wait after 10 attempts past the fast window %v, want about %v", d, bindRetryMax)
	}
}

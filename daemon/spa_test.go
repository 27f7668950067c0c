package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

var spaT0 = time.Unix(1_800_000_000, 0)

// spaPolicy writes a key file and returns an SPA door's policy using it,
// with the replay cache in a temp state_dir.
func spaPolicy(t *testing.T, allowOther bool) (*policy.Policy, spa.Keys) {
	t.Helper()
	dir := t.TempDir()
	keys, err := spa.GenerateKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(dir, "alice.spa")
	if err := os.WriteFile(kf, []byte(keys.KeyFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	other := "false"
	if allowOther {
		other = "true"
	}
	src := `state_dir = "` + filepath.Join(dir, "state") + `"
door "spa" {
  spa { port = 62201 }
  client "alice" {
    key_file       = "` + kf + `"
    allow_other_ip = ` + other + `
  }
  open         = ["22/tcp", "53/udp"]
  open_for     = "30s"
  max_open_for = "2m"
}
`
	p, diags := policy.Parse(filepath.Join(dir, "sesame.hcl"), []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return p, keys
}

func spaHit(t *testing.T, keys spa.Keys, src string, m spa.Message, at time.Time) knock.Hit {
	t.Helper()
	wire, err := spa.Encode(keys, m, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	return knock.Hit{Src: netip.MustParseAddr(src), Proto: policy.UDP, Port: 62201, Payload: []byte(wire)}
}

func access(s ...string) []spa.Access {
	var out []spa.Access
	for _, a := range s {
		ac, err := spa.ParseAccess(a)
		if err != nil {
			panic(err)
		}
		out = append(out, ac)
	}
	return out
}

// TestSPAFlow runs packets through the reader's verification and the
// loop's checks, with an injected clock and a fake table.
func TestSPAFlow(t *testing.T) {
	zero4 := netip.MustParseAddr("0.0.0.0")
	for _, tt := range []struct {
		name       string
		allowOther bool
		msg        spa.Message
		src        string
		want       []nft.Grant // nil: refused
		reason     string
	}{
		{"type 1, source asked", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: zero4, Access: access("tcp/22")}, "198.51.100.2",
			[]nft.Grant{{Src: netip.MustParseAddr("198.51.100.2"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 30 * time.Second}}, ""},
		{"embedded address equal to source", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("198.51.100.2"), Access: access("tcp/22", "udp/53")}, "198.51.100.2",
			[]nft.Grant{{Src: netip.MustParseAddr("198.51.100.2"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}, {Port: 53, Proto: policy.UDP}}, TTL: 30 * time.Second}}, ""},
		{"type 3 capped by max_open_for", false, spa.Message{User: "a", Type: spa.TypeClientTimeoutAccess, Addr: zero4, Access: access("tcp/22"), ClientTimeout: time.Hour}, "198.51.100.2",
			[]nft.Grant{{Src: netip.MustParseAddr("198.51.100.2"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 2 * time.Minute}}, ""},
		{"type 3 within the cap", false, spa.Message{User: "a", Type: spa.TypeClientTimeoutAccess, Addr: zero4, Access: access("tcp/22"), ClientTimeout: 60 * time.Second}, "198.51.100.2",
			[]nft.Grant{{Src: netip.MustParseAddr("198.51.100.2"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 60 * time.Second}}, ""},
		{"IPv6 extension", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("2001:db8::2"), Access: access("tcp/22")}, "2001:db8::2",
			[]nft.Grant{{Src: netip.MustParseAddr("2001:db8::2"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 30 * time.Second}}, ""},
		{"port not in open", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: zero4, Access: access("tcp/22", "tcp/23")}, "198.51.100.2", nil, "ports-not-allowed"},
		{"icmp", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: zero4, Access: access("icmp/0")}, "198.51.100.2", nil, "ports-not-allowed"},
		{"other address refused", false, spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("203.0.113.9"), Access: access("tcp/22")}, "198.51.100.2", nil, "other-ip"},
		{"other address allowed", true, spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("203.0.113.9"), Access: access("tcp/22")}, "198.51.100.2",
			[]nft.Grant{{Src: netip.MustParseAddr("203.0.113.9"), Door: "spa", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 30 * time.Second}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, keys := spaPolicy(t, tt.allowOther)
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, nil))
			s := newSPAState(log, nil)
			s.now = func() time.Time { return spaT0 }
			if err := s.update(p); err != nil {
				t.Fatal(err)
			}
			table := &fakeTable{}
			l := newLoop(log, table, p, knock.Config{})
			l.spa = s
			h := spaHit(t, keys, tt.src, tt.msg, spaT0)
			if !s.handle(context.Background(), &h) {
				t.Fatal("handle = false, want the SPA packet taken")
			}
			select {
			case r := <-s.out:
				l.spaGrant(r)
				l.flush()
			default:
				t.Fatalf("no request accepted; log:\n%s", logBuf.String())
			}
			var got []nft.Grant
			for _, c := range table.calls {
				got = append(got, c.Grants...)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("grants (-want +got):\n%s\nlog:\n%s", diff, logBuf.String())
			}
			if tt.reason != "" && !strings.Contains(logBuf.String(), "msg=spa-refused door=spa src="+tt.src+" client=alice reason="+tt.reason) {
				t.Errorf("log lacks the refusal with reason %s:\n%s", tt.reason, logBuf.String())
			}
		})
	}
}

// TestSPAReplayAcrossRestart accepts a packet, refuses its replay, then
// refuses it again after a "restart" (a new state loading the saved cache),
// and refuses garbage, a wrong key and an old packet with their reasons.
func TestSPAReplayAcrossRestart(t *testing.T) {
	p, keys := spaPolicy(t, false)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	newState := func() *spaState {
		s := newSPAState(log, nil)
		s.now = func() time.Time { return spaT0.Add(10 * time.Second) }
		if err := s.update(p); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newState()
	msg := spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("0.0.0.0"), Access: access("tcp/22")}
	h := spaHit(t, keys, "198.51.100.2", msg, spaT0)
	wire := bytes.Clone(h.Payload)
	accepted := func(s *spaState, h knock.Hit) bool {
		s.handle(context.Background(), &h)
		select {
		case <-s.out:
			return true
		default:
			return false
		}
	}
	if !accepted(s, h) {
		t.Fatalf("first packet refused:\n%s", logBuf.String())
	}
	stranger := knock.Hit{Src: netip.MustParseAddr("203.0.113.7"), Proto: policy.UDP, Port: 62201, Payload: wire}
	if accepted(s, stranger) {
		t.Fatal("replay from another address accepted")
	}
	// No save at shutdown: a crash. The packet was written when accepted.
	s2 := newState()
	if accepted(s2, stranger) {
		t.Fatal("replay accepted after a restart")
	}
	wrong, _ := spa.GenerateKeys(rand.Reader)
	if accepted(s2, spaHit(t, wrong, "198.51.100.3", msg, spaT0)) {
		t.Fatal("wrong key accepted")
	}
	if accepted(s2, spaHit(t, keys, "198.51.100.4", msg, spaT0.Add(-time.Hour))) {
		t.Fatal("old packet accepted")
	}
	garbage := knock.Hit{Src: netip.MustParseAddr("198.51.100.5"), Proto: policy.UDP, Port: 62201, Payload: bytes.Repeat([]byte("A"), 300)}
	if accepted(s2, garbage) {
		t.Fatal("garbage accepted")
	}
	for _, want := range []string{
		"src=203.0.113.7 client=alice reason=replay",
		"src=198.51.100.3 reason=bad-hmac",
		"src=198.51.100.4 client=alice reason=too-old",
		"src=198.51.100.5 reason=bad-encoding",
	} {
		if strings.Count(logBuf.String(), want) == 0 {
			t.Errorf("log lacks %q:\n%s", want, logBuf.String())
		}
	}
	// A knock port's UDP packet is not taken.
	other := knock.Hit{Src: netip.MustParseAddr("198.51.100.5"), Proto: policy.UDP, Port: 7000}
	if s2.handle(context.Background(), &other) {
		t.Error("handle took a packet to a non-SPA port")
	}
}

// TestSPAReplayWrittenBeforeGrant: by the time an accepted request
// reaches the loop (which grants it), its replay entry is on disk; a
// packet that entered the cache although refused (too new: a client
// whose clock runs 200 s ahead, max_age 2m) is written too, and stays
// refused as a replay across a restart when its time comes (t0+250 s).
func TestSPAReplayWrittenBeforeGrant(t *testing.T) {
	p, keys := spaPolicy(t, false)
	p.Doors[0].SPA.MaxAge = 120 * time.Second
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	state := func(now time.Time) *spaState {
		s := newSPAState(log, nil)
		s.now = func() time.Time { return now }
		if err := s.update(p); err != nil {
			t.Fatal(err)
		}
		return s
	}
	onDisk := func(wire []byte, now time.Time) bool {
		c := spa.NewReplayCache(time.Minute, 0)
		if err := c.Load(filepath.Join(p.StateDir, replayFile), now); err != nil {
			t.Fatal(err)
		}
		return c.Seen(spa.ReplayKey(wire), now)
	}
	msg := spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.MustParseAddr("0.0.0.0"), Access: access("tcp/22")}

	s := state(spaT0)
	h := spaHit(t, keys, "198.51.100.2", msg, spaT0)
	wire := bytes.Clone(h.Payload)
	s.handle(context.Background(), &h)
	if len(s.out) != 1 {
		t.Fatalf("packet not accepted:\n%s", logBuf.String())
	}
	if !onDisk(wire, spaT0) {
		t.Error("accepted request on its way to the loop, its replay entry not on disk")
	}

	ahead := spaHit(t, keys, "198.51.100.2", msg, spaT0.Add(200*time.Second))
	wire = bytes.Clone(ahead.Payload)
	s.handle(context.Background(), &ahead)
	if len(s.out) != 1 || !strings.Contains(logBuf.String(), "reason=too-new") {
		t.Fatalf("a packet 200 s ahead: want it refused as too new:\n%s", logBuf.String())
	}
	later := spaT0.Add(250 * time.Second)
	s2 := state(later) // a restart, no save at shutdown
	replay := knock.Hit{Src: netip.MustParseAddr("203.0.113.7"), Proto: policy.UDP, Port: 62201, Payload: wire}
	s2.handle(context.Background(), &replay)
	if len(s2.out) != 0 {
		t.Fatalf("replay at t0+250s accepted:\n%s", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "src=203.0.113.7 client=alice reason=replay") {
		t.Errorf("replay not refused as a replay:\n%s", logBuf.String())
	}
}

// TestSPACorruptCache starts empty, with a warning, from a corrupt file.
func TestSPACorruptCache(t *testing.T) {
	p, _ := spaPolicy(t, false)
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.StateDir, replayFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	s := newSPAState(slog.New(slog.NewTextHandler(&logBuf, nil)), nil)
	if err := s.update(p); err != nil {
		t.Fatalf("update with a corrupt cache: %v", err)
	}
	if !strings.Contains(logBuf.String(), "spa-replay-unreadable") {
		t.Errorf("no warning:\n%s", logBuf.String())
	}
}

func TestRefusalLimiter(t *testing.T) {
	l := refusalLimiter{perSecond: 3}
	var logged int
	for range 10 {
		if _, ok := l.allow(spaT0); ok {
			logged++
		}
	}
	if logged != 3 {
		t.Errorf("logged %d in one second, want 3", logged)
	}
	if n, ok := l.allow(spaT0.Add(time.Second)); !ok || n != 7 {
		t.Errorf("next second: allow = %d, %v; want 7 suppressed, true", n, ok)
	}
}

// BenchmarkSPAHandleGarbage is the reader's cost of a random payload to
// the SPA port: one HMAC, no grant.
func BenchmarkSPAHandleGarbage(b *testing.B) {
	t := &testing.T{}
	p, _ := spaPolicy(t, false)
	s := newSPAState(slog.New(slog.DiscardHandler), nil)
	if err := s.update(p); err != nil {
		b.Fatal(err)
	}
	h := knock.Hit{Src: netip.MustParseAddr("198.18.0.1"), Proto: policy.UDP, Port: 62201, Payload: bytes.Repeat([]byte("Ab+/"), 100)}
	b.ReportAllocs()
	for b.Loop() {
		s.handle(context.Background(), &h)
	}
}

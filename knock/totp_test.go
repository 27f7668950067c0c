package knock

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

var (
	secA = []byte("alice-secret-0123456789")
	secB = []byte("bob-secret-0123456789ab")
)

func totpTestPolicy() *policy.Policy {
	return &policy.Policy{Doors: []policy.Door{{
		Name: "vault", SeqTimeout: 5 * time.Second, TCPFlags: policy.DefaultTCPFlags,
		Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, OpenFor: 30 * time.Second,
		TOTP:    &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Skew: 1, Proto: policy.TCP},
		Clients: []policy.Client{{Name: "alice", Secret: secA}, {Name: "bob", Secret: secB}},
	}}}
}

// knockAll feeds a whole sequence from src at now and returns every
// decision.
func knockAll(m *TOTPMatcher, src netip.Addr, ports []uint16, now time.Time) []Decision {
	var out []Decision
	for _, p := range ports {
		out = append(out, m.Observe(Hit{Src: src, Proto: policy.TCP, Port: p, Flags: policy.FlagSYN}, now)...)
	}
	return out
}

func TestTOTPMatcher(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_010, 0) // 10s into a step
	ctr := totp.Counter(t0, 30*time.Second)
	seq := func(s []byte, c uint64) []uint16 { return totp.Sequence(s, c, 20000, 29999, 4) }
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
	m := NewTOTP(totpTestPolicy(), Config{MaxEntries: 64})
	for _, tt := range []struct {
		name   string
		src    netip.Addr
		ports  []uint16
		want   Kind
		reason Reason
		client string
	}{
		{"alice now opens", a, seq(secA, ctr), Open, NoReason, "alice"},
		{"replay from another source", b, seq(secA, ctr), Reset, Replayed, "alice"},
		{"bob one step ahead (skew)", b, seq(secB, ctr+1), Open, NoReason, "bob"},
		{"bob two steps back (outside skew)", b, seq(secB, ctr-2), 0, 0, ""},
		{"alice previous step", a, seq(secA, ctr-1), Open, NoReason, "alice"},
		{"wrong secret", b, seq([]byte("mallory-secret-0123456"), ctr), 0, 0, ""},
	} {
		got := knockAll(m, tt.src, tt.ports, t0)
		var k Kind
		var r Reason
		var c string
		for _, d := range got {
			if d.Kind == Open || d.Kind == Reset {
				k, r, c = d.Kind, d.Reason, d.Client
			}
		}
		if k != tt.want || r != tt.reason || c != tt.client {
			t.Errorf("%s: last decisions %+v; want %v %v client %q", tt.name, got, tt.want, tt.reason, tt.client)
		}
	}
	// Burned until its window passes: still burned 1 step later, then the
	// counter leaves the window and cannot be accepted anyway.
	if got := knockAll(m, b, seq(secA, ctr), t0.Add(30*time.Second)); len(got) == 0 || got[len(got)-1].Reason != Replayed {
		t.Errorf("replay one step later: %+v, want a Replayed reset", got)
	}
	// Rollover mid-knock keeps progress: two hits in one step, two in the next.
	s := seq(secA, ctr+1)
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[0], Flags: policy.FlagSYN}, t0.Add(18*time.Second))
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[1], Flags: policy.FlagSYN}, t0.Add(19*time.Second))
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[2], Flags: policy.FlagSYN}, t0.Add(21*time.Second))
	if ds := m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[3], Flags: policy.FlagSYN}, t0.Add(22*time.Second)); len(ds) != 1 || ds[0].Kind != Open {
		t.Errorf("knock across a step boundary: %+v, want Open", ds)
	}
}

// TestTOTPFloodBounded: a flood of spoofed sources hitting candidate first
// ports never holds more than MaxEntries entries, and a source further
// along survives it.
func TestTOTPFloodBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_010, 0)
	ctr := totp.Counter(t0, 30*time.Second)
	m := NewTOTP(totpTestPolicy(), Config{MaxEntries: 128})
	s := totp.Sequence(secA, ctr, 20000, 29999, 4)
	a := netip.MustParseAddr("192.0.2.2")
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[0], Flags: policy.FlagSYN}, t0)
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[1], Flags: policy.FlagSYN}, t0)
	for i := range 10000 {
		src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		m.Observe(Hit{Src: src, Proto: policy.TCP, Port: s[0], Flags: policy.FlagSYN}, t0)
		if m.Len() > 128 {
			t.Fatalf("after %d spoofed hits: %d entries, want at most 128", i+1, m.Len())
		}
	}
	m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[2], Flags: policy.FlagSYN}, t0)
	if ds := m.Observe(Hit{Src: a, Proto: policy.TCP, Port: s[3], Flags: policy.FlagSYN}, t0); len(ds) != 1 || ds[0].Kind != Open {
		t.Errorf("the source further along was lost to the flood: %+v", ds)
	}
}

// TestTOTPObserveAllocs: within a step, Observe allocates nothing.
func TestTOTPObserveAllocs(t *testing.T) {
	t0 := time.Unix(1_700_000_010, 0)
	m := NewTOTP(totpTestPolicy(), Config{MaxEntries: 128})
	s := totp.Sequence(secA, totp.Counter(t0, 30*time.Second), 20000, 29999, 4)
	h := Hit{Src: netip.MustParseAddr("192.0.2.2"), Proto: policy.TCP, Port: s[0], Flags: policy.FlagSYN}
	other := h
	other.Port = 21000
	m.Observe(h, t0)
	if n := testing.AllocsPerRun(1000, func() { m.Observe(h, t0); m.Observe(other, t0) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per run, want 0", n)
	}
}

func BenchmarkTOTPObserve(b *testing.B) {
	t0 := time.Unix(1_700_000_010, 0)
	m := NewTOTP(totpTestPolicy(), Config{})
	h := Hit{Src: netip.MustParseAddr("192.0.2.2"), Proto: policy.TCP, Port: 21000, Flags: policy.FlagSYN}
	for i := 0; b.Loop(); i++ {
		h.Port = 20000 + uint16(i%10000)
		m.Observe(h, t0)
	}
}

// TestTOTPBurnsSurviveRestart: a sequence burned before a restart, handed to
// the new matcher with Restore, is still refused as a replay; burns whose
// window has passed are dropped.
func TestTOTPBurnsSurviveRestart(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_010, 0)
	ctr := totp.Counter(t0, 30*time.Second)
	seqA := totp.Sequence(secA, ctr, 20000, 29999, 4)
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")

	m := NewTOTP(totpTestPolicy(), Config{MaxEntries: 64})
	if got := knockAll(m, a, seqA, t0); len(got) == 0 || got[len(got)-1].Kind != Open {
		t.Fatalf("first knock: %+v, want Open", got)
	}
	burns := m.Burns()
	want := []Burn{{Door: "vault", Client: "alice", Counter: ctr}}
	if len(burns) != 1 || burns[0] != want[0] {
		t.Fatalf("Burns() = %+v, want %+v", burns, want)
	}

	// Without Restore a new matcher would open again: that is the window
	// a restart must not re-open.
	fresh := NewTOTP(totpTestPolicy(), Config{MaxEntries: 64})
	if got := knockAll(fresh, b, seqA, t0.Add(time.Second)); len(got) == 0 || got[len(got)-1].Kind != Open {
		t.Fatalf("control: a matcher without the burns should open, got %+v", got)
	}

	restarted := NewTOTP(totpTestPolicy(), Config{MaxEntries: 64})
	restarted.Restore(burns)
	got := knockAll(restarted, b, seqA, t0.Add(time.Second))
	if len(got) == 0 || got[len(got)-1].Kind != Reset || got[len(got)-1].Reason != Replayed {
		t.Errorf("replay after a restart: %+v, want a Replayed reset", got)
	}
	// Two steps later the burn's window (skew 1) has passed: it is dropped.
	restarted.Observe(Hit{Src: b, Proto: policy.TCP, Port: 1, Flags: policy.FlagSYN}, t0.Add(61*time.Second))
	if got := restarted.Burns(); len(got) != 0 {
		t.Errorf("Burns() after the window = %+v, want none", got)
	}
}

// TestTOTPProtocols: a TOTP door follows the Matcher's rule 1 and rule 6:
// hits of the other protocol do not count, and a hit of its own protocol
// that is no candidate's next, last or first port resets, inside the range
// or outside it.
func TestTOTPProtocols(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_010, 0)
	ctr := totp.Counter(t0, 30*time.Second)
	a := netip.MustParseAddr("192.0.2.2")
	udpPolicy := totpTestPolicy()
	udpPolicy.Doors[0].TOTP.Proto = policy.UDP
	for _, tt := range []struct {
		name  string
		p     *policy.Policy
		proto policy.Proto
		other Hit // sent between steps 2 and 3
		want  Kind
		why   Reason
	}{
		{"tcp door ignores UDP in its range", totpTestPolicy(), policy.TCP, Hit{Proto: policy.UDP, Port: 25000}, Open, NoReason},
		{"tcp door ignores UDP elsewhere", totpTestPolicy(), policy.TCP, Hit{Proto: policy.UDP, Port: 53}, Open, NoReason},
		{"tcp door ignores an ACK", totpTestPolicy(), policy.TCP, Hit{Proto: policy.TCP, Port: 22, Flags: policy.FlagACK}, Open, NoReason},
		{"tcp door resets on a SYN outside its range", totpTestPolicy(), policy.TCP, Hit{Proto: policy.TCP, Port: 22, Flags: policy.FlagSYN}, Reset, OtherPort},
		{"udp door ignores a SYN", udpPolicy, policy.UDP, Hit{Proto: policy.TCP, Port: 22, Flags: policy.FlagSYN}, Open, NoReason},
		{"udp door resets on UDP outside its range", udpPolicy, policy.UDP, Hit{Proto: policy.UDP, Port: 53}, Reset, OtherPort},
	} {
		m := NewTOTP(tt.p, Config{MaxEntries: 64})
		seq := totp.Sequence(secA, ctr, 20000, 29999, 4)
		step := func(port uint16) Hit { return Hit{Src: a, Proto: tt.proto, Port: port, Flags: policy.FlagSYN} }
		m.Observe(step(seq[0]), t0)
		m.Observe(step(seq[1]), t0)
		o := tt.other
		o.Src = a
		var last *Decision
		for _, h := range []Hit{o, step(seq[2]), step(seq[3])} {
			for _, d := range m.Observe(h, t0) {
				if d.Kind == Open || d.Kind == Reset {
					last = &d
				}
			}
			if last != nil {
				break
			}
		}
		if last == nil || last.Kind != tt.want || last.Reason != tt.why {
			t.Errorf("%s: decision %+v, want %v %v", tt.name, last, tt.want, tt.why)
		}
	}
}

// TestTOTPUnburn: a sequence whose grant failed is given back: the same
// client's knock opens again within its window (issue 11: no code burned
// for a grant that did not land); other burns stay.
func TestTOTPUnburn(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_010, 0)
	ctr := totp.Counter(t0, 30*time.Second)
	seqA := totp.Sequence(secA, ctr, 20000, 29999, 4)
	seqB := totp.Sequence(secB, ctr, 20000, 29999, 4)
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
	m := NewTOTP(totpTestPolicy(), Config{MaxEntries: 64})
	var opened Decision
	for _, seq := range [][]uint16{seqA, seqB} {
		got := knockAll(m, a, seq, t0)
		if len(got) == 0 || got[len(got)-1].Kind != Open {
			t.Fatalf("knock: %+v, want Open", got)
		}
		if opened.Door == nil {
			opened = got[len(got)-1]
		}
	}
	if opened.Counter != ctr || opened.Client != "alice" {
		t.Fatalf("Open decision: client %q counter %d, want alice %d", opened.Client, opened.Counter, ctr)
	}
	m.Unburn(Burn{Door: opened.Door.Name, Client: opened.Client, Counter: opened.Counter})
	if got := m.Burns(); len(got) != 1 || got[0].Client != "bob" {
		t.Errorf("Burns() after Unburn = %+v, want only bob's", got)
	}
	if got := knockAll(m, b, seqA, t0.Add(time.Second)); len(got) == 0 || got[len(got)-1].Kind != Open {
		t.Errorf("alice's sequence after Unburn: %+v, want Open", got)
	}
	if got := knockAll(m, b, seqB, t0.Add(time.Second)); len(got) == 0 || got[len(got)-1].Reason != Replayed {
		t.Errorf("bob's sequence: %+v, want a Replayed reset", got)
	}
}

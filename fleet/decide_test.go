package fleet

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t)
	ms := func(d time.Duration) int64 { return f.now.Add(d).UnixMilli() }
	tests := []struct {
		name   string
		signer string              // default: the payload's origin
		edit   func(p *Payload)    // changes to f.payload()
		raw    func([]byte) []byte // changes to the signed envelope
		from   string              // Envelope.From
		seen   func(*Seen)
		self   func(*Self)
		spent  bool // the origin used up its rate cap before
		// unsynced: the receiver's clock is unsynchronised
		unsynced bool
		want     Reason
	}{
		{name: "open", want: ReasonNone},
		{name: "db door of bastion-2", signer: "bastion-2", edit: func(p *Payload) {
			p.Origin = "bastion-2"
			p.Door = "db"
			p.Ports = []string{"5432/tcp"}
			p.NotAfter = ms(5 * time.Second)
		}, want: ReasonNone},
		{name: "close", edit: func(p *Payload) { p.Kind = KindClose }, want: ReasonNone},
		{name: "ipv6", edit: func(p *Payload) { p.Src = "2001:db8::2" }, want: ReasonNone},
		{name: "from origin", from: "bastion-1", want: ReasonNone},
		{name: "subset of open", edit: func(p *Payload) { p.Ports = []string{"2222/tcp", "22/tcp"} }, want: ReasonNone},
		{name: "too big", raw: func(b []byte) []byte { return append(b, make([]byte, MaxEnvelope)...) }, want: ReasonTooBig},
		{name: "bad json", raw: func(b []byte) []byte { return b[:len(b)-1] }, want: ReasonBadJSON},
		{name: "unknown field", raw: func(b []byte) []byte { return []byte(strings.Replace(string(b), `{"v":1,`, `{"v":1,"x":0,`, 1)) }, want: ReasonBadJSON},
		{name: "bad version", raw: func(b []byte) []byte { return []byte(strings.Replace(string(b), `"v":1`, `"v":2`, 1)) }, want: ReasonBadVersion},
		{name: "bad kind", edit: func(p *Payload) { p.Kind = "toggle" }, want: ReasonBadJSON},
		{name: "bad id", edit: func(p *Payload) { p.ID = "9F1C0123456789ABCDEF0123456789AB" }, want: ReasonBadJSON},
		{name: "non-canonical port", edit: func(p *Payload) { p.Ports = []string{"22"} }, want: ReasonBadJSON},
		{name: "other fleet", edit: func(p *Payload) { p.Fleet = "staging" }, want: ReasonOtherFleet},
		{name: "not my group", edit: func(p *Payload) { p.Group = "db" }, signer: "bastion-2", want: ReasonNotMyGroup},
		{name: "unknown member", edit: func(p *Payload) { p.Origin = "eve" }, signer: "bastion-1", want: ReasonUnknownMember},
		{name: "signed by another member", signer: "bastion-2", from: "bastion-2", want: ReasonSignerNotOrigin},
		{name: "delivered under another name", from: "bastion-2", want: ReasonSignerNotOrigin},
		{name: "signed by another member, no transport name", signer: "bastion-2", want: ReasonBadSignature},
		{name: "bad signature", raw: func(b []byte) []byte { return resign(t, b, make([]byte, 64)) }, want: ReasonBadSignature},
		{name: "not allowed door", edit: func(p *Payload) { p.Door = "db"; p.Ports = []string{"5432/tcp"}; p.NotAfter = ms(5 * time.Second) }, want: ReasonNotAllowed},
		{name: "not allowed group", signer: "mallory", edit: func(p *Payload) { p.Origin = "mallory" }, want: ReasonNotAllowed},
		{name: "unknown door", signer: "bastion-2", edit: func(p *Payload) {
			p.Origin = "bastion-2"
			p.Door = "db"
			p.Ports = []string{"5432/tcp"}
			p.NotAfter = ms(5 * time.Second)
		},
			self: func(s *Self) { s.Doors = map[string]Door{"ssh": s.Doors["ssh"]} }, want: ReasonUnknownDoor},
		{name: "ports not in open", edit: func(p *Payload) { p.Ports = []string{"22/tcp", "23/tcp"} }, want: ReasonPortsNotInOpen},
		{name: "port of other proto", edit: func(p *Payload) { p.Ports = []string{"22/udp"} }, want: ReasonPortsNotInOpen},
		{name: "bad src", edit: func(p *Payload) { p.Src = "bastion" }, want: ReasonBadSrc},
		{name: "src with zone", edit: func(p *Payload) { p.Src = "fe80::1%eth0" }, want: ReasonBadSrc},
		{name: "src 4in6", edit: func(p *Payload) { p.Src = "::ffff:198.51.100.2" }, want: ReasonBadSrc},
		{name: "src prefix", edit: func(p *Payload) { p.Src = "198.51.100.0/24" }, want: ReasonBadSrc},
		{name: "skew 1.9s accepted", edit: func(p *Payload) { p.IssuedAt = ms(1900 * time.Millisecond); p.NotAfter = ms(20 * time.Second) }, want: ReasonNone},
		{name: "skew 2s accepted", edit: func(p *Payload) { p.IssuedAt = ms(2 * time.Second); p.NotAfter = ms(20 * time.Second) }, want: ReasonNone},
		{name: "from the future 2.1s", edit: func(p *Payload) { p.IssuedAt = ms(2100 * time.Millisecond); p.NotAfter = ms(20 * time.Second) }, want: ReasonFromTheFuture},
		{name: "not_after exactly now", edit: func(p *Payload) { p.IssuedAt = ms(-10 * time.Second); p.NotAfter = ms(0) }, want: ReasonExpired},
		{name: "expired", edit: func(p *Payload) { p.IssuedAt = ms(-40 * time.Second); p.NotAfter = ms(-10 * time.Second) }, want: ReasonExpired},
		{name: "1 ms left", edit: func(p *Payload) { p.IssuedAt = ms(-10 * time.Second); p.NotAfter = ms(time.Millisecond) }, want: ReasonNone},
		{name: "too long", edit: func(p *Payload) { p.NotAfter = ms(30*time.Second + time.Millisecond) }, want: ReasonTooLong},
		{name: "too long for the receiver's door", signer: "bastion-2", edit: func(p *Payload) {
			p.Origin, p.Door, p.Ports, p.NotAfter = "bastion-2", "db", []string{"5432/tcp"}, ms(11*time.Second)
		}, want: ReasonTooLong},
		{name: "replayed id", seen: func(s *Seen) { s.Add("bastion-1", f.payload().ID, f.now.Add(time.Minute)) }, want: ReasonReplayedID},
		{name: "rate limited", spent: true, want: ReasonRateLimited},
		{name: "clock unsynchronised", unsynced: true, want: ReasonClockUnsynced},
		{name: "spa and totp burns", edit: func(p *Payload) {
			p.Burn = []string{SPABurn([32]byte{1, 2}), TOTPBurn("alice.laptop", 59_000_123), OneTimeBurn(strings.Repeat("ab", 32))}
		}, want: ReasonNone},
		{name: "short one-time burn", edit: func(p *Payload) { p.Burn = []string{OneTimeBurn("abcd")} }, want: ReasonBadJSON},
		{name: "short spa burn", edit: func(p *Payload) { p.Burn = []string{"spa:sha256:00"} }, want: ReasonBadJSON},
		{name: "uppercase spa burn", edit: func(p *Payload) { p.Burn = []string{strings.ToUpper(SPABurn([32]byte{0xab}))} }, want: ReasonBadJSON},
		{name: "totp burn without counter", edit: func(p *Payload) { p.Burn = []string{"totp:alice:"} }, want: ReasonBadJSON},
		{name: "unknown burn", edit: func(p *Payload) { p.Burn = []string{"hotp:alice:1"} }, want: ReasonBadJSON},
		{name: "too many burns", edit: func(p *Payload) {
			for i := range MaxBurns + 1 {
				p.Burn = append(p.Burn, TOTPBurn("a", uint64(i)))
			}
		}, want: ReasonBadJSON},
		{name: "same id other origin", seen: func(s *Seen) { s.Add("bastion-2", f.payload().ID, f.now.Add(time.Minute)) }, want: ReasonNone},
	}
	covered := map[Reason]bool{}
	for _, tt := range tests {
		covered[tt.want] = true
	}
	for _, r := range Reasons() {
		if !covered[r] {
			t.Errorf("no row refuses with %v", r)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := f.payload()
			if tt.edit != nil {
				tt.edit(&p)
			}
			signer := tt.signer
			if signer == "" {
				signer = p.Origin
			}
			b := f.sign(t, signer, p)
			if tt.raw != nil {
				b = tt.raw(b)
			}
			seen := NewSeen(16)
			if tt.seen != nil {
				tt.seen(seen)
			}
			self := f.self
			if tt.self != nil {
				tt.self(&self)
			}
			// Through the Receiver, which the daemon uses: Decode, Decide,
			// the clock check and the rate cap.
			r := &Receiver{Members: f.members, Self: self, Seen: seen, Limiter: Limiter{Rate: 1, Burst: 1}, Unsynced: tt.unsynced}
			if tt.spent {
				r.Limiter.Admit(Decision{Origin: p.Origin}, f.now)
			}
			d := r.Receive(b, tt.from, f.now).Decision
			if d.Reason != tt.want {
				t.Fatalf("reason = %v (err %v), want %v", d.Reason, d.Err, tt.want)
			}
			if d.Applies() != (tt.want == ReasonNone) {
				t.Errorf("Applies() = %v with reason %v", d.Applies(), d.Reason)
			}
		})
	}
}

// resign replaces the signature of an envelope.
func resign(t *testing.T, b, sig []byte) []byte {
	t.Helper()
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	w.Sig = base64.StdEncoding.EncodeToString(sig)
	out, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReasonNames(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, r := range Reasons() {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "reason(") || s == "none" || names[s] {
			t.Errorf("reason %d has no name of its own: %q", r, s)
		}
		names[s] = true
	}
}

func TestDecideApply(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t)
	p := f.payload()
	p.Ports = []string{"2222/tcp", "22/tcp"}
	d := DecideBytes(f.sign(t, "bastion-1", p), f.members, f.self, f.now, nil)
	want := Decision{
		Kind: KindOpen, Origin: "bastion-1", ID: p.ID, DoorName: "ssh", SrcText: "198.51.100.2",
		Src:      netip.MustParseAddr("198.51.100.2"),
		Ports:    []policy.PortProto{{Port: 2222, Proto: policy.TCP}, {Port: 22, Proto: policy.TCP}},
		IssuedAt: time.UnixMilli(p.IssuedAt),
		NotAfter: time.UnixMilli(p.NotAfter),
		Timeout:  30 * time.Second,
		Comment:  "fleet:ssh:bastion-1:9f1c",
	}
	if diff := cmp.Diff(want, d, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
}

// TestDecideTimeout checks timeout = min(not_after - now, open_for), in
// whole milliseconds.
func TestDecideTimeout(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t)
	tests := []struct {
		name           string
		issued, notAft time.Duration // from now
		now            time.Duration // added to f.now
		want           time.Duration
	}{
		{"full", 0, 30 * time.Second, 0, 30 * time.Second},
		{"late arrival", 0, 30 * time.Second, 12 * time.Second, 18 * time.Second},
		{"sender clock ahead", 2 * time.Second, 32 * time.Second, 0, 30 * time.Second},
		{"shorter than open_for", 0, 5 * time.Second, 0, 5 * time.Second},
		{"sub-millisecond now", 0, 30 * time.Second, 1500 * time.Microsecond, 29998 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := f.payload()
			p.IssuedAt = f.now.Add(tt.issued).UnixMilli()
			p.NotAfter = f.now.Add(tt.notAft).UnixMilli()
			d := DecideBytes(f.sign(t, "bastion-1", p), f.members, f.self, f.now.Add(tt.now), nil)
			if !d.Applies() {
				t.Fatalf("refused: %v", d.Reason)
			}
			if d.Timeout != tt.want {
				t.Errorf("timeout = %v, want %v", d.Timeout, tt.want)
			}
			if d.Timeout > f.self.Doors["ssh"].OpenFor || f.now.Add(tt.now).Add(d.Timeout).After(time.UnixMilli(p.NotAfter)) {
				t.Errorf("timeout %v outlives open_for or not_after", d.Timeout)
			}
		})
	}
}

// TestDecideFlippedByte flips each byte of a valid envelope in several
// ways: every result is refused.
func TestDecideFlippedByte(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t)
	b := f.sign(t, "bastion-1", f.payload())
	if d := DecideBytes(b, f.members, f.self, f.now, nil); !d.Applies() {
		t.Fatalf("unflipped record refused: %v", d.Reason)
	}
	masks := []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}
	if testing.Short() {
		masks = []byte{0x01, 0x20, 0x80}
	}
	for i := range b {
		for _, m := range masks {
			c := append([]byte(nil), b...)
			c[i] ^= m
			if d := DecideBytes(c, f.members, f.self, f.now, nil); d.Applies() {
				t.Errorf("byte %d ^ %#x (%q -> %q) applied", i, m, b[i], c[i])
			}
		}
	}
}

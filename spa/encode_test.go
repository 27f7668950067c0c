package spa

import (
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// TestRoundTrip: what Encode writes, Verify reads back, for every digest,
// IPv4 and IPv6, types 1 and 3.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for d := MD5; d <= SHA3_512; d++ {
		for _, addr := range []string{"198.51.100.7", "0.0.0.0", "2001:db8::7", "::"} {
			for _, typ := range []Type{TypeAccess, TypeClientTimeoutAccess} {
				name := d.String() + "/" + addr + "/" + string('0'+rune(typ))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					k := testKeys(t, d)
					m := Message{User: "alice", Type: typ, Addr: netip.MustParseAddr(addr),
						Access: []Access{{"tcp", 22}, {"udp", 53}, {"tcp", 443}}}
					if typ == TypeClientTimeoutAccess {
						m.ClientTimeout = 60 * time.Second
					}
					w := mustEncode(t, k, m, t0)
					if len(w) < MinWireLen || len(w) > MaxWireLen {
						t.Fatalf("wire of %d bytes", len(w))
					}
					got, err := mustVerifier(t, k, 0, nil).Verify(w, t0.Add(time.Second))
					if err != nil {
						t.Fatal(err)
					}
					m.Timestamp, m.Version = t0, "3.0.0"
					if diff := cmp.Diff(m, got, addrCmp); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestEncodeLooksLikeFwknop: the plaintext has the layout the real
// client writes (compare pkt1 in the vectors).
func TestEncodeLooksLikeFwknop(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	w := mustEncode(t, k, access22("192.0.2.10"), time.Unix(1795289786, 0))
	pt, err := open(k, w[:len(w)-43])
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[1-9][0-9]{15}:YWxpY2U:1795289786:3\.0\.0:1:MTkyLjAuMi4xMCx0Y3AvMjI:[A-Za-z0-9+/]{43}$`)
	if !re.Match(pt) {
		t.Errorf("plaintext %q does not look like fwknop's", pt)
	}
	// Different randomness, different packet.
	w2, err := Encode(k, access22("192.0.2.10"), testRand(8), time.Unix(1795289786, 0))
	if err != nil || w2 == string(w) {
		t.Errorf("second packet %q equal or failed: %v", w2, err)
	}
	// nil randomness means crypto/rand.
	if _, err := Encode(k, access22("192.0.2.10"), nil, t0); err != nil {
		t.Error(err)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	ok := access22("192.0.2.1")
	mod := func(f func(*Message)) Message { m := ok; m.Access = append([]Access{}, ok.Access...); f(&m); return m }
	for _, tt := range []struct {
		name string
		keys Keys
		m    Message
	}{
		{"no HMAC key", Keys{Enc: k.Enc, Digest: SHA256}, ok},
		{"no user", k, mod(func(m *Message) { m.User = "" })},
		{"user with colon is fine but newline is not", k, mod(func(m *Message) { m.User = "a\nb" })},
		{"no address", k, mod(func(m *Message) { m.Addr = netip.Addr{} })},
		{"no access", k, mod(func(m *Message) { m.Access = nil })},
		{"bad proto", k, mod(func(m *Message) { m.Access[0].Proto = "sctp" })},
		{"command type", k, mod(func(m *Message) { m.Type = TypeCommand })},
		{"NAT type", k, mod(func(m *Message) { m.Type = TypeNATAccess })},
		{"timeout with type 1", k, mod(func(m *Message) { m.ClientTimeout = time.Minute })},
		{"type 3 without timeout", k, mod(func(m *Message) { m.Type = TypeClientTimeoutAccess })},
		{"type 3 fractional timeout", k, mod(func(m *Message) { m.Type, m.ClientTimeout = TypeClientTimeoutAccess, 1500*time.Millisecond })},
	} {
		if w, err := Encode(tt.keys, tt.m, testRand(1), t0); err == nil {
			t.Errorf("%s: encoded %q", tt.name, w)
		}
	}
}

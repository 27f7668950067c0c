package spa

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func testKeys(t testing.TB, d Digest) Keys {
	t.Helper()
	k, err := GenerateKeys(testRand(uint64(d)))
	if err != nil {
		t.Fatal(err)
	}
	k.Digest = d
	return k
}

func mustVerifier(t testing.TB, k Keys, maxAge time.Duration, rc *ReplayCache) *Verifier {
	t.Helper()
	v, err := NewVerifier(k, maxAge, rc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var t0 = time.Unix(1_800_000_000, 0)

func access22(addr string) Message {
	return Message{User: "alice", Type: TypeAccess, Addr: netip.MustParseAddr(addr), Access: []Access{{"tcp", 22}}}
}

func mustEncode(t testing.TB, k Keys, m Message, now time.Time) []byte {
	t.Helper()
	w, err := Encode(k, m, testRand(7), now)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(w)
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("reason %q, want %q (err %v)", got, want, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("errors.Is(%v, %q) is false", err, want)
	}
}

// TestFlippedByte: changing any single byte of a valid packet is refused,
// for a bad HMAC (or, for the first byte, a layout fwknop never sends).
func TestFlippedByte(t *testing.T) {
	t.Parallel()
	for _, vec := range []string{"pkt1", "t3", "t11", "t12"} {
		v := vectorByName(t, vec)
		ver := mustVerifier(t, v.keys, 0, nil)
		for i := range len(v.wire) {
			for _, repl := range []byte{v.wire[i] ^ 1, 'A', '/', '\n'} {
				if repl == v.wire[i] {
					continue
				}
				w := []byte(v.wire)
				w[i] = repl
				_, err := ver.Verify(w, vecNow)
				want := ReasonBadHMAC
				switch {
				case !wireChar[repl]:
					want = ReasonBadEncoding
				case i == 0 && !strings.ContainsRune("89+/", rune(repl)):
					want = ReasonBadEncoding
				}
				if ReasonOf(err) != want {
					t.Fatalf("%s: byte %d set to %q: reason %q, want %q", vec, i, repl, ReasonOf(err), want)
				}
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	good := mustEncode(t, k, access22("198.51.100.7"), t0)
	other := testKeys(t, SHA512)
	other.Digest = SHA256
	tests := []struct {
		name string
		keys Keys // verifier's
		wire []byte
		now  time.Time
		want Reason
	}{
		{"accepted", k, good, t0, ""},
		{"truncated HMAC", k, good[:len(good)-1], t0, ReasonBadHMAC},
		{"HMAC cut off", k, good[:len(good)-43], t0, ReasonBadHMAC},
		{"extra byte", k, append(bytes.Clone(good), 'A'), t0, ReasonBadHMAC},
		{"wrong digest type, same length", Keys{k.Enc, k.HMAC, SHA3_256}, good, t0, ReasonBadHMAC},
		{"wrong digest type", Keys{k.Enc, k.HMAC, SHA512}, good, t0, ReasonBadHMAC},
		{"wrong HMAC key", Keys{k.Enc, other.HMAC, SHA256}, good, t0, ReasonBadHMAC},
		{"wrong encryption key", Keys{other.Enc, k.HMAC, SHA256}, good, t0, ReasonDecrypt},
		{"too old", k, good, t0.Add(121 * time.Second), ReasonTooOld},
		{"oldest accepted", k, good, t0.Add(120 * time.Second), ""},
		{"too new", k, good, t0.Add(-121 * time.Second), ReasonTooNew},
		{"newest accepted", k, good, t0.Add(-120 * time.Second), ""},
		{"too short", k, good[:MinWireLen-1], t0, ReasonBadLength},
		{"too long", k, bytes.Repeat([]byte("A"), MaxWireLen+1), t0, ReasonBadLength},
		{"empty", k, nil, t0, ReasonBadLength},
		{"newline", k, append(bytes.Clone(good), '\n'), t0, ReasonBadEncoding},
		{"GPG prefix", k, append([]byte("hQ"), good[2:]...), t0, ReasonGPGRefused},
		{"salt prefix kept", k, append([]byte("U2FsdGVkX1"), good...), t0, ReasonBadEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mustVerifier(t, tt.keys, 0, nil).Verify(tt.wire, tt.now)
			wantReason(t, err, tt.want)
		})
	}
}

// sealed encrypts body plus a correct inner digest, to test what follows
// the HMAC.
func sealed(t testing.TB, k Keys, body string) []byte {
	t.Helper()
	return sealedRaw(t, k, body+":"+SHA256.sum([]byte(body)))
}

// sealedRaw encrypts the exact plaintext pt.
func sealedRaw(t testing.TB, k Keys, pt string) []byte {
	t.Helper()
	w, err := seal(k, []byte(pt), testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(w)
}

func TestPlaintextRefusals(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	ts := "1800000000"
	msg := b64.EncodeToString([]byte("198.51.100.7,tcp/22"))
	usr := b64.EncodeToString([]byte("alice"))
	head := "1234567890123456:" + usr + ":" + ts + ":3.0.0:"
	b := func(s string) string { return b64.EncodeToString([]byte(s)) }
	tests := []struct {
		name, body string
		want       Reason
		raw        bool // body is the whole plaintext, digest included
	}{
		{"type 1", head + "1:" + msg, "", false},
		{"type 1 with server_auth", head + "1:" + msg + ":" + b("x"), "", false},
		{"type 3", head + "3:" + msg + ":60", "", false},
		{"type 0 command", head + "0:" + b("198.51.100.7,rm -rf /"), ReasonCommandRefused, false},
		{"type 2 NAT", head + "2:" + msg + ":" + b("192.0.2.9,22"), ReasonNATRefused, false},
		{"type 4 NAT timeout", head + "4:" + msg + ":" + b("192.0.2.9,22") + ":60", ReasonNATRefused, false},
		{"type 5 local NAT", head + "5:" + msg + ":" + b("127.0.0.1,22"), ReasonNATRefused, false},
		{"type 6 local NAT timeout", head + "6:" + msg + ":" + b("127.0.0.1,22") + ":60", ReasonNATRefused, false},
		{"type 7", head + "7:" + msg, ReasonUnsupportedType, false},
		{"type 3 without timeout", head + "3:" + msg, ReasonBadMessage, false},
		{"type 2 without NAT", head + "2:" + msg, ReasonBadMessage, false},
		{"bad digest", head + "1:" + msg + ":" + SHA256.sum([]byte("other")), ReasonBadDigest, true},
		{"digest of odd length", head + "1:" + msg + ":abc", ReasonBadDigest, true},
		{"digest missing", head + "1:" + msg, ReasonBadMessage, true},
		{"sha3 inner digest", head + "1:" + msg + ":" + SHA3_256.sum([]byte(head+"1:"+msg)), "", true},
		{"sha3_512 inner digest", head + "1:" + msg + ":" + SHA3_512.sum([]byte(head+"1:"+msg)), "", true},
		{"md5 inner digest", head + "1:" + msg + ":" + MD5.sum([]byte(head+"1:"+msg)), "", true},
		{"sha1 inner digest", head + "1:" + msg + ":" + SHA1.sum([]byte(head+"1:"+msg)), "", true},
		{"sha384 inner digest", head + "1:" + msg + ":" + SHA384.sum([]byte(head+"1:"+msg)), "", true},
		{"sha512 inner digest", head + "1:" + msg + ":" + SHA512.sum([]byte(head+"1:"+msg)), "", true},
		{"short rand", "123:" + usr + ":" + ts + ":3.0.0:1:" + msg, ReasonBadMessage, false},
		{"rand not digits", "12345678901234x6:" + usr + ":" + ts + ":3.0.0:1:" + msg, ReasonBadMessage, false},
		{"user not base64", "1234567890123456:a=b:" + ts + ":3.0.0:1:" + msg, ReasonBadMessage, false},
		{"user with control byte", "1234567890123456:" + b("a\x01") + ":" + ts + ":3.0.0:1:" + msg, ReasonBadMessage, false},
		{"timestamp not a number", "1234567890123456:" + usr + ":now:3.0.0:1:" + msg, ReasonBadMessage, false},
		{"too few fields", head + "1", ReasonBadMessage, false},
		{"too many fields", head + "1:" + msg + ":" + b("x") + ":" + b("y"), ReasonBadMessage, false},
		{"message without ports", head + "1:" + b("198.51.100.7"), ReasonBadMessage, false},
		{"message bad proto", head + "1:" + b("198.51.100.7,sctp/22"), ReasonBadMessage, false},
		{"message bad port", head + "1:" + b("198.51.100.7,tcp/65536"), ReasonBadMessage, false},
		{"message bad address", head + "1:" + b("example.org,tcp/22"), ReasonBadMessage, false},
		{"message zoned address", head + "1:" + b("fe80::1%eth0,tcp/22"), ReasonBadMessage, false},
		{"IPv6 message", head + "1:" + b("2001:db8::7,tcp/22"), "", false},
		{"timeout not a number", head + "3:" + msg + ":sixty", ReasonBadMessage, false},
		{"non-printable", head + "1:" + msg + "\x7f", ReasonDecrypt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := sealed(t, k, tt.body)
			if tt.raw {
				w = sealedRaw(t, k, tt.body)
			}
			_, err := mustVerifier(t, k, 0, nil).Verify(w, t0)
			wantReason(t, err, tt.want)
		})
	}
}

func TestDecryptRefusals(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	mac := func(ct string) []byte { return []byte(ct + string(macText(k, []byte(ct)))) }
	// Valid HMAC over ciphertexts that are not whole AES blocks or carry
	// none: the HMAC does not make them decryptable.
	good := string(mustEncode(t, k, access22("192.0.2.1"), t0))
	ct := good[:len(good)-43]
	for _, tt := range []struct {
		name string
		wire []byte
		want Reason
	}{
		{"partial block", mac(ct[:len(ct)-8]), ReasonDecrypt},
		{"padding in text", mac(ct[:len(ct)-4] + "=AAA"), ReasonBadEncoding},
	} {
		_, err := mustVerifier(t, k, 0, nil).Verify(tt.wire, t0)
		if ReasonOf(err) != tt.want {
			t.Errorf("%s: reason %q, want %q (%v)", tt.name, ReasonOf(err), tt.want, err)
		}
	}
}

func TestReplayRefused(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	rc := NewReplayCache(2*DefaultMaxAge, 0)
	v := mustVerifier(t, k, 0, rc)
	w := mustEncode(t, k, access22("198.51.100.7"), t0)
	if _, err := v.Verify(w, t0); err != nil {
		t.Fatal(err)
	}
	// The same packet, from anywhere, any time in its window: refused.
	for _, d := range []time.Duration{0, time.Second, 119 * time.Second} {
		_, err := v.Verify(w, t0.Add(d))
		wantReason(t, err, ReasonReplay)
	}
	// After the window the age check refuses it.
	_, err := v.Verify(w, t0.Add(2*DefaultMaxAge))
	wantReason(t, err, ReasonTooOld)
	// A second verifier sharing the cache (another client of the door)
	// refuses it too.
	v2 := mustVerifier(t, k, 0, rc)
	_, err = v2.Verify(w, t0.Add(time.Second))
	wantReason(t, err, ReasonReplay)
	// Refused types enter the cache too: the same NAT packet again is a
	// replay.
	nat := sealed(t, k, "1234567890123456:YQ:1800000000:3.0.0:2:"+b64.EncodeToString([]byte("192.0.2.1,tcp/22"))+":"+b64.EncodeToString([]byte("10.0.0.1,22")))
	_, err = v.Verify(nat, t0)
	wantReason(t, err, ReasonNATRefused)
	_, err = v.Verify(nat, t0)
	wantReason(t, err, ReasonReplay)
	// A garbage packet does not enter the cache.
	g := bytes.Clone(w)
	g[5] ^= 1
	for range 2 {
		_, err = v.Verify(g, t0)
		wantReason(t, err, ReasonBadHMAC)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	k := testKeys(t, SHA256)
	for _, tt := range []struct {
		name   string
		keys   Keys
		maxAge time.Duration
	}{
		{"no HMAC key", Keys{Enc: k.Enc, Digest: SHA256}, 0},
		{"no enc key", Keys{HMAC: k.HMAC, Digest: SHA256}, 0},
		{"long enc key", Keys{Enc: make([]byte, 33), HMAC: k.HMAC, Digest: SHA256}, 0},
		{"long HMAC key", Keys{Enc: k.Enc, HMAC: make([]byte, 129), Digest: SHA256}, 0},
		{"no digest", Keys{Enc: k.Enc, HMAC: k.HMAC}, 0},
		{"negative age", k, -time.Second},
	} {
		if _, err := NewVerifier(tt.keys, tt.maxAge, nil); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestVerifyAny(t *testing.T) {
	t.Parallel()
	alice, bob := testKeys(t, SHA256), testKeys(t, SHA512)
	rc := NewReplayCache(0, 0)
	vs := []*Verifier{mustVerifier(t, alice, 0, rc), mustVerifier(t, bob, 0, rc)}
	w := mustEncode(t, bob, access22("0.0.0.0"), t0)
	m, i, err := VerifyAny(vs, w, t0)
	if err != nil || i != 1 {
		t.Fatalf("bob's packet: index %d, %v", i, err)
	}
	src := netip.MustParseAddr("198.51.100.9")
	if m.Target(src) != src {
		t.Errorf("target %v, want the source", m.Target(src))
	}
	if m := access22("192.0.2.1"); m.Target(src) != m.Addr {
		t.Errorf("target %v, want the embedded address", m.Target(src))
	}
	// Bob's replayed packet: alice's verifier says bad-hmac, bob's
	// replay; the replay is reported.
	_, i, err = VerifyAny(vs, w, t0)
	wantReason(t, err, ReasonReplay)
	if i != -1 {
		t.Errorf("index %d on refusal", i)
	}
	g := bytes.Clone(w)
	g[10] ^= 1
	_, _, err = VerifyAny(vs, g, t0)
	wantReason(t, err, ReasonBadHMAC)
	_, _, err = VerifyAny(nil, w, t0)
	wantReason(t, err, ReasonBadHMAC)
}

package spa

import (
	"crypto/hmac"
	"testing"
	"time"
)

// FuzzVerify: no input panics, and no input yields a Message unless its
// HMAC is valid (checked here independently of the verifier). With a
// random HMAC key the fuzzer cannot forge one, so any accepted input is a
// failure; with the seeds' key, mutated packets must fail or be exactly
// authentic.
func FuzzVerify(f *testing.F) {
	known := testKeys(f, SHA256)
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.wire))
	}
	for _, typ := range []Type{TypeAccess, TypeClientTimeoutAccess} {
		m := access22("2001:db8::1")
		m.Type = typ
		if typ == TypeClientTimeoutAccess {
			m.ClientTimeout = time.Minute
		}
		f.Add(mustEncode(f, known, m, t0))
	}
	f.Add([]byte("hQ" + string(make([]byte, 200))))
	random := testKeys(f, SHA256)
	random.HMAC = []byte("a key no seed was made with, so no fuzz input can carry its HMAC")
	vKnown := mustVerifier(f, known, 0, NewReplayCache(0, 16))
	vRandom := mustVerifier(f, random, 0, nil)
	f.Fuzz(func(t *testing.T, wire []byte) {
		if m, err := vRandom.Verify(wire, t0); err == nil {
			t.Fatalf("accepted without a valid HMAC: %+v", m)
		} else if ReasonOf(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
		m, err := vKnown.Verify(wire, t0)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		n := len(wire) - 43
		want := macText(known, wire[:n])
		if !hmac.Equal(want, wire[n:]) {
			t.Fatalf("accepted %q with a wrong HMAC: %+v", wire, m)
		}
		if m.Type != TypeAccess && m.Type != TypeClientTimeoutAccess || len(m.Access) == 0 || !m.Addr.IsValid() {
			t.Fatalf("accepted an invalid message %+v", m)
		}
	})
}

// FuzzParsePlaintext: the plaintext parser never panics on any text, and
// anything it accepts carries a matching inner digest.
func FuzzParsePlaintext(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.plaintext))
	}
	f.Fuzz(func(t *testing.T, pt []byte) {
		p, err := parsePlaintext(pt)
		if err != nil {
			return
		}
		if len(p.rand) != 16 {
			t.Fatalf("accepted rand %q", p.rand)
		}
		parseAccessMsg(p.msg)
	})
}

package spa

import (
	"testing"
	"time"
)

// BenchmarkVerifyGarbage: a random payload of a plausible length and
// charset: one HMAC, then refused.
func BenchmarkVerifyGarbage(b *testing.B) {
	k := testKeys(b, SHA256)
	v := mustVerifier(b, k, 0, NewReplayCache(0, 0))
	w := mustEncode(b, k, access22("198.51.100.7"), t0)
	w[len(w)-1] ^= 1 // same shape, wrong HMAC
	b.ReportAllocs()
	b.SetBytes(int64(len(w)))
	for b.Loop() {
		if _, err := v.Verify(w, t0); ReasonOf(err) != ReasonBadHMAC {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBinaryGarbage: random binary payloads (a UDP flood)
// never reach the HMAC.
func BenchmarkVerifyBinaryGarbage(b *testing.B) {
	k := testKeys(b, SHA256)
	v := mustVerifier(b, k, 0, nil)
	w := make([]byte, 512)
	testRand(9).Read(w)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(w, t0); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerifyValid: the full path of an accepted packet, replay cache
// included (a fresh clock per packet keeps the cache small).
func BenchmarkVerifyValid(b *testing.B) {
	for _, d := range []Digest{SHA256, SHA512} {
		b.Run(d.String(), func(b *testing.B) {
			k := testKeys(b, d)
			w := mustEncode(b, k, access22("198.51.100.7"), t0)
			v := mustVerifier(b, k, 0, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				if _, err := v.Verify(w, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	k := testKeys(b, SHA256)
	r := testRand(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(k, access22("198.51.100.7"), r, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplayCacheAdd(b *testing.B) {
	c := NewReplayCache(time.Hour, 65536)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Add(rkey(i), t0)
		i++
	}
}

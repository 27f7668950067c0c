// Package totp derives sesame's time-based knock sequences: for a shared
// secret and a step counter (floor(unix time / step), as in RFC 6238), an
// ordered list of distinct ports within a range, from HMAC-SHA256. It is
// pure: the time is a parameter. docs/TOTP.md states the algorithm with test
// vectors, so that anyone can write a client.
package totp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Label is the domain-separation prefix of every HMAC message.
const Label = "sesame-totp-v1"

// MinSecretBytes is the shortest secret accepted: 128 bits.
const MinSecretBytes = 16

// MinEntropyBits is the least per-knock entropy a door may have.
const MinEntropyBits = 32.0

// Counter returns floor(unix time of t / step). Times before 1970 give 0.
func Counter(t time.Time, step time.Duration) uint64 {
	s := int64(step / time.Second)
	u := t.Unix()
	if s <= 0 || u < 0 {
		return 0
	}
	return uint64(u / s)
}

// Sequence returns the length distinct ports in lo..hi (inclusive) that
// secret and counter derive. It panics if the range holds fewer than length
// ports (validation refuses such doors).
func Sequence(secret []byte, counter uint64, lo, hi uint16, length int) []uint16 {
	return AppendSequence(make([]uint16, 0, length), secret, counter, lo, hi, length)
}

// AppendSequence is Sequence appending to dst.
//
// The algorithm: N = hi-lo+1, limit = 2^32 - (2^32 mod N). For block j = 0,
// 1, 2, ...: H = HMAC-SHA256(secret, Label || BE64(counter) || BE32(j)); for
// each of the eight big-endian 32-bit words w of H in order, skip w when
// w >= limit (so that w mod N is unbiased), else p = lo + w mod N; skip p
// when already chosen, else append it; stop at length ports.
func AppendSequence(dst []uint16, secret []byte, counter uint64, lo, hi uint16, length int) []uint16 {
	n := uint64(hi) - uint64(lo) + 1
	if hi < lo || uint64(length) > n || length <= 0 {
		panic(fmt.Sprintf("totp: %d ports from %d-%d", length, lo, hi))
	}
	limit := (1 << 32) - (1<<32)%n
	start := len(dst)
	mac := hmac.New(sha256.New, secret)
	var msg [len(Label) + 12]byte
	copy(msg[:], Label)
	binary.BigEndian.PutUint64(msg[len(Label):], counter)
	var sum [sha256.Size]byte
	for j := uint32(0); ; j++ {
		binary.BigEndian.PutUint32(msg[len(Label)+8:], j)
		mac.Reset()
		mac.Write(msg[:])
		h := mac.Sum(sum[:0])
		for i := 0; i < len(h); i += 4 {
			w := uint64(binary.BigEndian.Uint32(h[i:]))
			if w >= limit {
				continue
			}
			p := lo + uint16(w%n)
			dup := false
			for _, q := range dst[start:] {
				if q == p {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			dst = append(dst, p)
			if len(dst)-start == length {
				return dst
			}
		}
	}
}

// EntropyBits returns log2 of the number of ordered sequences of length
// distinct ports drawn from n: log2(n!/(n-length)!).
func EntropyBits(n, length int) float64 {
	if length > n || length <= 0 {
		return 0
	}
	var b float64
	for i := range length {
		b += math.Log2(float64(n - i))
	}
	return b
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeSecret returns the file form of a secret: base32 (RFC 4648
// alphabet), upper case, no padding.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// ErrShortSecret is returned by ParseSecret for a secret under 128 bits.
var ErrShortSecret = errors.New("secret too short")

// ParseSecret decodes a secret file's content: base32, case-insensitive,
// spaces, tabs, line ends and "=" padding ignored. The secret must hold at
// least MinSecretBytes bytes.
func ParseSecret(text []byte) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '=':
			return -1
		}
		return r
	}, strings.ToUpper(string(text)))
	if s == "" {
		return nil, fmt.Errorf("%w: the file holds no base32 text (make one with sesame keygen)", ErrShortSecret)
	}
	b, err := b32.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base32 (A-Z, 2-7): %w", err)
	}
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("%w: %d bits, at least %d are needed (make one with sesame keygen)", ErrShortSecret, 8*len(b), 8*MinSecretBytes)
	}
	return b, nil
}

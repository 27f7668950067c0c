package spa

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// Digest is a hash used for the HMAC and for the plaintext's inner digest.
type Digest uint8

// Digests fwknop 2.6 supports. The zero value is invalid.
const (
	MD5 Digest = iota + 1
	SHA1
	SHA256
	SHA384
	SHA512
	SHA3_256
	SHA3_512
)

// DigestNames lists the accepted names, in fwknop's spelling.
var DigestNames = []string{"md5", "sha1", "sha256", "sha384", "sha512", "sha3_256", "sha3_512"}

// ParseDigest accepts fwknop's names (case-insensitive, so "SHA256" from an
// access.conf works too).
func ParseDigest(s string) (Digest, error) {
	for i, n := range DigestNames {
		if strings.EqualFold(s, n) {
			return Digest(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown digest %q; allowed: %s", s, strings.Join(DigestNames, " "))
}

func (d Digest) String() string {
	if d < MD5 || d > SHA3_512 {
		return fmt.Sprintf("digest(%d)", uint8(d))
	}
	return DigestNames[d-1]
}

func (d Digest) valid() bool { return d >= MD5 && d <= SHA3_512 }

// New returns a fresh hash.
func (d Digest) New() hash.Hash {
	switch d {
	case MD5:
		return md5.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512:
		return sha512.New()
	case SHA3_256:
		return sha3.New256()
	case SHA3_512:
		return sha3.New512()
	}
	panic("spa: invalid digest " + d.String())
}

// Size is the digest's length in bytes.
func (d Digest) Size() int {
	switch d {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256, SHA3_256:
		return 32
	case SHA384:
		return 48
	case SHA512, SHA3_512:
		return 64
	}
	return 0
}

// EncodedLen is the length of the digest in base64 without '=' (22 for
// md5 ... 86 for sha512): the length of the HMAC at the end of the wire.
func (d Digest) EncodedLen() int { return base64.RawStdEncoding.EncodedLen(d.Size()) }

// sum hashes b with d and returns the base64 text without '='.
func (d Digest) sum(b []byte) string {
	h := d.New()
	h.Write(b)
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil))
}

// innerDigests are the candidates for a plaintext digest of a given length,
// in the order fwknop tries them.
func innerDigests(encodedLen int) []Digest {
	switch encodedLen {
	case 22:
		return []Digest{MD5}
	case 27:
		return []Digest{SHA1}
	case 43:
		return []Digest{SHA256, SHA3_256}
	case 64:
		return []Digest{SHA384}
	case 86:
		return []Digest{SHA512, SHA3_512}
	}
	return nil
}

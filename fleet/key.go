package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// PrivateKeyPrefix starts a member's private key file: the file is one
// line, "ed25519-private:" followed by the standard base64 of the 32-byte
// Ed25519 seed (RFC 8032's private key), as sesame keygen --fleet writes
// it. The prefix keeps it apart from members.hcl's public "ed25519:" keys
// and from a NATS nkey seed, which must not sign records.
const PrivateKeyPrefix = "ed25519-private:"

// GenerateKey returns a new private key from rand (crypto/rand.Reader
// outside tests).
func GenerateKey(rand io.Reader) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	return priv, err
}

// FormatPrivateKey returns the content of a private key file for priv.
func FormatPrivateKey(priv ed25519.PrivateKey) string {
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
}

// ParsePrivateKey parses a private key file's content. Its errors never
// quote the content.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("more than one line: a fleet key file is one line, %s followed by base64", PrivateKeyPrefix)
	}
	b64s, ok := strings.CutPrefix(strings.TrimSpace(s), PrivateKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("it does not start with %q (sesame keygen --fleet -o FILE writes one)", PrivateKeyPrefix)
	}
	seed, err := b64(b64s)
	if err != nil {
		return nil, fmt.Errorf("not standard base64 after %q", PrivateKeyPrefix)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("the key has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

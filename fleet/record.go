// Package fleet holds the pure part of fleet mode (docs/design.md, "Fleet
// (in progress)"): the signed grant record that one member publishes for a
// group, the members file that says whose key may grant what, and the
// checks a receiver makes before it applies a record it did not see
// itself. It has no network code, no goroutines and no clock: the time is a
// parameter.
package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sesame-knock/sesame/policy"
)

// MaxEnvelope bounds the size of an encoded envelope. A record of one door
// and a few ports is a few hundred bytes; the bound is checked before any
// decoding.
const MaxEnvelope = 4 << 10

// signContext is prepended to the payload bytes before signing, so that a
// fleet signature can never be taken for a signature over anything else.
const signContext = "sesame-grant-v1\n"

// Kinds of record.
const (
	KindOpen  = "open"
	KindClose = "close"
)

// Payload is the signed content of a record, as docs/design.md ("Fleet")
// defines it.
// IssuedAt and NotAfter are unix milliseconds.
type Payload struct {
	Fleet    string   `json:"fleet"`
	Group    string   `json:"group"`
	Origin   string   `json:"origin"`
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Door     string   `json:"door"`
	Src      string   `json:"src"`
	Ports    []string `json:"ports"`
	IssuedAt int64    `json:"issued_at"`
	NotAfter int64    `json:"not_after"`
	Burn     []string `json:"burn,omitempty"`
}

// Envelope is a decoded record: the payload bytes exactly as signed, their
// signature, and the payload parsed from them. Decode checks its form only;
// Decide checks the signature and everything else.
type Envelope struct {
	Raw     []byte // payload bytes, as signed
	Sig     []byte // Ed25519 signature over signContext || Raw
	Payload Payload
	// From is the member the transport says wrote the record (the name
	// its subject or key carries), set by the caller; "" when unknown.
	// Decide refuses a record whose From is not its origin.
	From string
}

// wire is the envelope's JSON form.
type wire struct {
	V   int    `json:"v"`
	P   string `json:"p"`
	Sig string `json:"sig"`
}

// Errors of Decode. Each wraps one of ErrTooBig, ErrBadJSON or ErrVersion.
var (
	ErrTooBig   = errors.New("record too big")
	ErrBadJSON  = errors.New("malformed record")
	ErrVersion  = errors.New("unsupported record version")
	errEncoding = errors.New("bad base64")
)

// Sign encodes p and signs it with priv, returning the envelope's bytes.
func Sign(priv ed25519.PrivateKey, p Payload) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign record: private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	b, err := Envelope{Raw: raw, Sig: ed25519.Sign(priv, signed(raw))}.Encode()
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("sign record: %d bytes: %w (at most %d)", len(b), ErrTooBig, MaxEnvelope)
	}
	return b, nil
}

// Encode returns the envelope's wire form for e.Raw and e.Sig (e.Payload is
// not read: the signed bytes are carried as they are).
func (e Envelope) Encode() ([]byte, error) {
	return json.Marshal(wire{
		V:   1,
		P:   base64.StdEncoding.EncodeToString(e.Raw),
		Sig: base64.StdEncoding.EncodeToString(e.Sig),
	})
}

// Verify reports whether e.Sig is pub's signature over e.Raw.
func (e Envelope) Verify(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && len(e.Sig) == ed25519.SignatureSize &&
		ed25519.Verify(pub, signed(e.Raw), e.Sig)
}

// signed returns the bytes a signature covers.
func signed(raw []byte) []byte {
	m := make([]byte, 0, len(signContext)+len(raw))
	return append(append(m, signContext...), raw...)
}

// Decode parses an envelope: at most MaxEnvelope bytes, strict JSON (no
// unknown or duplicate-looking trailing data), version 1, canonical
// standard base64 for both fields, a signature of Ed25519's size, and a
// payload that is itself strict JSON. It does not verify the signature.
func Decode(b []byte) (Envelope, error) {
	if len(b) > MaxEnvelope {
		return Envelope{}, fmt.Errorf("%d bytes: %w (at most %d)", len(b), ErrTooBig, MaxEnvelope)
	}
	var w wire
	if err := strict(b, &w, envelopeKeys); err != nil {
		return Envelope{}, fmt.Errorf("envelope: %w: %v", ErrBadJSON, err)
	}
	if w.V != 1 {
		return Envelope{}, fmt.Errorf("v=%d: %w (want 1)", w.V, ErrVersion)
	}
	raw, err := b64(w.P)
	if err != nil {
		return Envelope{}, fmt.Errorf("p: %w: %v", ErrBadJSON, err)
	}
	sig, err := b64(w.Sig)
	if err != nil {
		return Envelope{}, fmt.Errorf("sig: %w: %v", ErrBadJSON, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return Envelope{}, fmt.Errorf("sig: %w: %d bytes, want %d", ErrBadJSON, len(sig), ed25519.SignatureSize)
	}
	var p Payload
	if err := strict(raw, &p, payloadKeys); err != nil {
		return Envelope{}, fmt.Errorf("payload: %w: %v", ErrBadJSON, err)
	}
	if err := p.check(); err != nil {
		return Envelope{}, fmt.Errorf("payload: %w: %v", ErrBadJSON, err)
	}
	return Envelope{Raw: raw, Sig: sig, Payload: p}, nil
}

// MaxPorts bounds the ports of one record.
const MaxPorts = 64

// check validates the payload's form: what can be judged without the
// receiver's config or clock.
func (p Payload) check() error {
	if p.Kind != KindOpen && p.Kind != KindClose {
		return fmt.Errorf("kind %q: want %q or %q", p.Kind, KindOpen, KindClose)
	}
	if !ValidID(p.ID) {
		return fmt.Errorf("id %q: want 32 lowercase hex digits", p.ID)
	}
	if len(p.Ports) == 0 || len(p.Ports) > MaxPorts {
		return fmt.Errorf("%d ports: want 1 to %d", len(p.Ports), MaxPorts)
	}
	for _, s := range p.Ports {
		if _, err := parsePort(s); err != nil {
			return err
		}
	}
	if err := checkBurns(p.Burn); err != nil {
		return err
	}
	if p.IssuedAt <= 0 || p.NotAfter <= p.IssuedAt {
		return fmt.Errorf("issued_at %d, not_after %d: want 0 < issued_at < not_after", p.IssuedAt, p.NotAfter)
	}
	return nil
}

// parsePort parses a record's port, which must be in canonical form
// ("22/tcp", as policy.PortProto prints it).
func parsePort(s string) (policy.PortProto, error) {
	pp, err := policy.ParsePortProto(s)
	if err != nil {
		return pp, err
	}
	if pp.String() != s {
		return pp, fmt.Errorf("port %q: want %q", s, pp.String())
	}
	return pp, nil
}

// ValidID reports whether id is a record id: 128 bits in lowercase hex.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewID returns a fresh record id: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// The member names of each object, spelled exactly. encoding/json matches
// names case-insensitively and lets a repeated name win: both are refused
// here, so that one record has one meaning.
var (
	envelopeKeys = []string{"v", "p", "sig"}
	payloadKeys  = []string{"fleet", "group", "origin", "id", "kind", "door", "src", "ports", "issued_at", "not_after", "burn"}
)

// strict decodes exactly one JSON object from b into v, refusing names not
// in keys (exact case), repeated names and trailing data.
func strict(b []byte, v any, keys []string) error {
	if err := checkKeys(b, keys); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the object")
	}
	return nil
}

// checkKeys walks the top-level object of b and checks its member names.
func checkKeys(b []byte, keys []string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	var seen uint32 // one bit per entry of keys (at most 32)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		i := slices.Index(keys, name)
		if i < 0 {
			return fmt.Errorf("unknown field %q", name)
		}
		if seen&(1<<i) != 0 {
			return fmt.Errorf("repeated field %q", name)
		}
		seen |= 1 << i
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// b64 decodes canonical padded standard base64: a string that does not
// re-encode to itself (non-zero padding bits) is refused, so that one
// record has exactly one encoding.
func b64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEncoding, err)
	}
	if base64.StdEncoding.EncodedLen(len(b)) != len(s) { // CR or LF inside
		return nil, fmt.Errorf("%w: not canonical", errEncoding)
	}
	return b, nil
}

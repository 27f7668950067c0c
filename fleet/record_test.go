package fleet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSignDecode(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t)
	p := f.payload()
	p.Burn = []string{SPABurn([32]byte{7})}
	b := f.sign(t, "bastion-1", p)
	if !bytes.HasPrefix(b, []byte(`{"v":1,"p":"`)) {
		t.Errorf("envelope %s", b)
	}
	env, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, env.Payload); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	pub := f.keys["bastion-1"].Public().(ed25519.PublicKey)
	if !env.Verify(pub) {
		t.Error("does not verify with the signer's key")
	}
	if env.Verify(f.keys["bastion-2"].Public().(ed25519.PublicKey)) {
		t.Error("verifies with another key")
	}
	// The signature covers the context string: a bare signature over the
	// payload does not verify.
	bare := Envelope{Raw: env.Raw, Sig: ed25519.Sign(f.keys["bastion-1"], env.Raw)}
	if bare.Verify(pub) {
		t.Error("a signature without the context verifies")
	}
	if _, err := Sign(f.keys["bastion-1"][:10], p); err == nil {
		t.Error("Sign with a short key succeeded")
	}
	big := p
	big.Burn = []string{strings.Repeat("x", MaxEnvelope)}
	if _, err := Sign(f.keys["bastion-1"], big); !errors.Is(err, ErrTooBig) {
		t.Errorf("Sign of a big payload: %v, want ErrTooBig", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	p := func(payload string) string { return base64.StdEncoding.EncodeToString([]byte(payload)) }
	good := `{"fleet":"prod","group":"web","origin":"a","id":"9f1c0123456789abcdef0123456789ab","kind":"open","door":"ssh","src":"192.0.2.1","ports":["22/tcp"],"issued_at":1,"not_after":2}`
	env := func(payload string) string { return `{"v":1,"p":"` + p(payload) + `","sig":"` + sig + `"}` }
	if _, err := Decode([]byte(env(good))); err != nil {
		t.Fatalf("good envelope: %v", err)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrBadJSON},
		{"array", `[]`, ErrBadJSON},
		{"too big", `{"v":1,"p":"` + strings.Repeat("A", MaxEnvelope) + `"}`, ErrTooBig},
		{"version 0", `{"p":"` + p(good) + `","sig":"` + sig + `"}`, ErrVersion},
		{"version 2", `{"v":2,"p":"` + p(good) + `","sig":"` + sig + `"}`, ErrVersion},
		{"unknown field", `{"v":1,"p":"` + p(good) + `","sig":"` + sig + `","k":1}`, ErrBadJSON},
		{"repeated field", `{"v":1,"v":1,"p":"` + p(good) + `","sig":"` + sig + `"}`, ErrBadJSON},
		{"name case", `{"V":1,"p":"` + p(good) + `","sig":"` + sig + `"}`, ErrBadJSON},
		{"trailing", env(good) + `{}`, ErrBadJSON},
		{"unpadded", `{"v":1,"p":"` + strings.TrimRight(p(good), "=") + `","sig":"` + sig + `"}`, ErrBadJSON},
		{"url base64", `{"v":1,"p":"` + base64.URLEncoding.EncodeToString([]byte(good+"??>")) + `","sig":"` + sig + `"}`, ErrBadJSON},
		{"newline in base64", `{"v":1,"p":"` + p(good)[:8] + `\n` + p(good)[8:] + `","sig":"` + sig + `"}`, ErrBadJSON},
		{"short sig", `{"v":1,"p":"` + p(good) + `","sig":"AAAA"}`, ErrBadJSON},
		{"payload not json", env(`nope`), ErrBadJSON},
		{"payload unknown field", env(strings.Replace(good, `"fleet"`, `"x":1,"fleet"`, 1)), ErrBadJSON},
		{"payload name case", env(strings.Replace(good, `"door"`, `"Door"`, 1)), ErrBadJSON},
		{"payload repeated door", env(strings.Replace(good, `"door":"ssh"`, `"door":"ssh","door":"web"`, 1)), ErrBadJSON},
		{"bad kind", env(strings.Replace(good, `"open"`, `"opened"`, 1)), ErrBadJSON},
		{"short id", env(strings.Replace(good, `9f1c0123456789abcdef0123456789ab`, `9f1c`, 1)), ErrBadJSON},
		{"no ports", env(strings.Replace(good, `["22/tcp"]`, `[]`, 1)), ErrBadJSON},
		{"bad port", env(strings.Replace(good, `22/tcp`, `22/sctp`, 1)), ErrBadJSON},
		{"not_after before issued_at", env(strings.Replace(good, `"not_after":2`, `"not_after":1`, 1)), ErrBadJSON},
		{"ms as string", env(strings.Replace(good, `"not_after":2`, `"not_after":"2"`, 1)), ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Decode([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("Decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	a, b := NewID(), NewID()
	if !ValidID(a) || !ValidID(b) || a == b {
		t.Errorf("NewID: %q, %q", a, b)
	}
}

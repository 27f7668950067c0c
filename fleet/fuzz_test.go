package fleet

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that a decoded envelope
// encodes to bytes that decode to the same payload bytes and signature and
// verify exactly as the original did.
func FuzzDecode(f *testing.F) {
	tf := newTestFleet(f)
	p := tf.payload()
	f.Add(tf.sign(f, "bastion-1", p))
	p.Kind, p.Src, p.Ports, p.Burn = KindClose, "2001:db8::1", []string{"22/tcp", "2222/tcp"}, []string{"spa:sha256:ab"}
	f.Add(tf.sign(f, "bastion-2", p))
	f.Add([]byte(`{"v":1,"p":"","sig":""}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"V":1,"v":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	pubs := []ed25519.PublicKey{
		tf.keys["bastion-1"].Public().(ed25519.PublicKey),
		tf.keys["bastion-2"].Public().(ed25519.PublicKey),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Decode(b)
		_ = DecideBytes(b, tf.members, tf.self, tf.now, nil) // never panics either
		if err != nil {
			return
		}
		again, err := env.Encode()
		if err != nil {
			t.Fatalf("encode a decoded envelope: %v", err)
		}
		env2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode a re-encoded envelope: %v\n%s", err, again)
		}
		if !bytes.Equal(env.Raw, env2.Raw) || !bytes.Equal(env.Sig, env2.Sig) {
			t.Fatal("re-encoding changed the payload or signature")
		}
		for _, pub := range pubs {
			if env.Verify(pub) != env2.Verify(pub) {
				t.Fatal("re-encoding changed verification")
			}
		}
	})
}

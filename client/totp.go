package client

import (
	"fmt"
	"os"
	"time"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

// TOTP is what the client must know of a TOTP door: its totp block. Zero
// fields take the server's defaults (WithDefaults).
type TOTP struct {
	Lo, Hi uint16
	Length int
	Step   time.Duration
	Proto  policy.Proto
}

// WithDefaults returns t with its zero fields set to the server's
// defaults: ports 20000-29999, 4 steps of 30s, TCP.
func (t TOTP) WithDefaults() TOTP {
	if t.Lo == 0 {
		t.Lo, t.Hi = policy.DefaultTOTPLo, policy.DefaultTOTPHi
	}
	if t.Length == 0 {
		t.Length = policy.DefaultTOTPLength
	}
	if t.Step == 0 {
		t.Step = policy.DefaultTOTPStep
	}
	if t.Proto == 0 {
		t.Proto = policy.TCP
	}
	return t
}

// Check says whether the range holds the sequence's distinct ports.
func (t TOTP) Check() error {
	if int(t.Hi)-int(t.Lo)+1 < t.Length {
		return fmt.Errorf("--port-range %d-%d holds fewer than %d ports", t.Lo, t.Hi, t.Length)
	}
	return nil
}

// Steps is the door's sequence at time at for secret.
func (t TOTP) Steps(secret []byte, at time.Time) []policy.PortProto {
	ports := totp.Sequence(secret, totp.Counter(at, t.Step), t.Lo, t.Hi, t.Length)
	out := make([]policy.PortProto, len(ports))
	for i, p := range ports {
		out[i] = policy.PortProto{Port: p, Proto: t.Proto}
	}
	return out
}

// ReadSecret reads a TOTP secret file (base32, as sesame keygen writes it).
func ReadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	secret, err := totp.ParseSecret(b)
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	return secret, nil
}

package policy

import (
	"encoding/base64"
	"os"
	"time"

	"github.com/sesame-knock/sesame/spa"
)

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Git keeps no file modes beyond the executable bit: give the test secrets
// the modes their tests are about before any test reads them.
func init() {
	for name, mode := range map[string]os.FileMode{
		"testdata/secrets/alice.key":     0o600,
		"testdata/secrets/bob.key":       0o400,
		"testdata/secrets/short.key":     0o600,
		"testdata/secrets/groupread.key": 0o640,
		"testdata/secrets/alice.spa":     0o600,
		"testdata/secrets/nohmac.spa":    0o600,
		"testdata/secrets/groupread.spa": 0o640,
	} {
		_ = os.Chmod(name, mode)
	}
}

var (
	referenceVault = Door{
		Name: "vault", SeqTimeout: DefaultSeqTimeout, TCPFlags: DefaultTCPFlags,
		Open: []PortProto{tcp(2222)}, OpenFor: 30 * time.Second, HookTimeout: DefaultHookTimeout,
		MaxGrants: DefaultMaxGrants,
		TOTP:      &TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Skew: 1, Proto: TCP},
		Clients: []Client{
			{Name: "alice", SecretFile: "testdata/secrets/alice.key", Secret: []byte("12345678901234567890")},
			{Name: "bob", SecretFile: "testdata/secrets/bob.key", Secret: []byte("Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef")},
		},
	}
	referenceSPA = Door{
		Name: "spa", SeqTimeout: DefaultSeqTimeout, TCPFlags: DefaultTCPFlags,
		Open: []PortProto{tcp(22), tcp(443)}, OpenFor: 30 * time.Second, HookTimeout: DefaultHookTimeout,
		MaxGrants: DefaultMaxGrants,
		SPA:       &SPA{Port: 62201, MaxAge: 2 * time.Minute, MaxOpenFor: 5 * time.Minute},
		Clients: []Client{{
			Name: "alice", KeyFile: "testdata/secrets/alice.spa",
			Keys: spa.Keys{Enc: b64("Ft0wgCjNNcObmwH1XFLF7v59oaEfmyp1NqfEqNE1uRM="), HMAC: b64("A+pubdHK+R2uipOG2XRg3gc79BPSmnKIqCdMPGR6kkbgPiZwfA7t9lexCUxlKpajwbhz6BfbAYtQrtC+ZWN0iA=="), Digest: spa.SHA256},
		}},
	}
	referenceOnce = Door{
		Name: "once", SeqTimeout: DefaultSeqTimeout, TCPFlags: DefaultTCPFlags,
		Sequence: []PortProto{tcp(7501), udp(7502), tcp(7503)},
		Open:     []PortProto{tcp(2223)}, OpenFor: DefaultOpenFor, HookTimeout: DefaultHookTimeout,
		MaxGrants:   DefaultMaxGrants,
		OneTimeFile: "testdata/reference.seqs",
		OneTime: []OneTimeSeq{
			{Line: 2, Steps: []PortProto{tcp(7501), udp(7502), tcp(7503)}, Key: oneTimeKey("7501 7502/udp 7503")},
			{Line: 4, Steps: []PortProto{tcp(7521), udp(7522), tcp(7523)}, Key: oneTimeKey("7521 7522/udp 7523")},
		},
	}
)

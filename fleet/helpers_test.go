package fleet

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// testFleet is a small fleet with keys generated for the test: bastion-1
// may open ssh in web, bastion-2 may open ssh and db in web and db, and
// mallory is a member that may grant only in group "other".
type testFleet struct {
	keys    map[string]ed25519.PrivateKey
	members *Members
	self    Self
	now     time.Time
}

func newTestFleet(t testing.TB) *testFleet {
	t.Helper()
	f := &testFleet{keys: map[string]ed25519.PrivateKey{}}
	grants := map[string]string{
		"bastion-1": `{ web = ["ssh"] }`,
		"bastion-2": `{ web = ["ssh", "db"], db = ["db"] }`,
		"mallory":   `{ other = ["ssh"] }`,
	}
	var src strings.Builder
	for _, name := range []string{"bastion-1", "bastion-2", "mallory"} {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[name] = priv
		fmt.Fprintf(&src, "member %q {\n  key = %q\n  may_grant = %s\n}\n", name, FormatKey(pub), grants[name])
	}
	m, diags := ParseMembers("members.hcl", []byte(src.String()))
	if diags.HasErrors() {
		t.Fatalf("members: %v", diags)
	}
	f.members = m
	f.self = Self{
		Fleet:  "prod",
		Groups: []string{"web"},
		Doors: map[string]Door{
			"ssh": {Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}, {Port: 2222, Proto: policy.TCP}}, OpenFor: 30 * time.Second},
			"db":  {Open: []policy.PortProto{{Port: 5432, Proto: policy.TCP}}, OpenFor: 10 * time.Second},
		},
		MaxSkew: 2 * time.Second,
	}
	f.now = time.UnixMilli(1_800_000_000_000)
	return f
}

// payload returns a valid open of ssh for 198.51.100.2 by bastion-1,
// issued now for 30 s.
func (f *testFleet) payload() Payload {
	return Payload{
		Fleet: "prod", Group: "web", Origin: "bastion-1",
		ID:   "9f1c0123456789abcdef0123456789ab",
		Kind: KindOpen, Door: "ssh", Src: "198.51.100.2", Ports: []string{"22/tcp"},
		IssuedAt: f.now.UnixMilli(), NotAfter: f.now.Add(30 * time.Second).UnixMilli(),
	}
}

// sign signs p with signer's key.
func (f *testFleet) sign(t testing.TB, signer string, p Payload) []byte {
	t.Helper()
	b, err := Sign(f.keys[signer], p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DecideBytes decodes b and decides on it, as Receiver.Receive does without
// a transport name; decoding errors become too-big, bad-json or
// bad-version refusals.
func DecideBytes(b []byte, m *Members, self Self, now time.Time, seen *Seen) Decision {
	env, err := Decode(b)
	if err != nil {
		return Decision{Reason: decodeReason(err), Err: err}
	}
	return Decide(env, m, self, now, seen)
}

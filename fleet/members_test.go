package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMembers(t *testing.T) {
	t.Parallel()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := FormatKey(pub)
	src := `member "bastion-1" {
  key       = "` + key + `"
  may_grant = { web = ["ssh", "db", "ssh"], "db" = ["db"] }
}
`
	m, diags := ParseMembers("members.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := m.Member("bastion-1")
	want := &Member{Name: "bastion-1", Key: pub, MayGrant: map[string][]string{"web": {"db", "ssh"}, "db": {"db"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("member (-want +got):\n%s", diff)
	}
	if m.Len() != 1 || m.Member("bastion-2") != nil {
		t.Errorf("Len = %d, bastion-2 = %v", m.Len(), m.Member("bastion-2"))
	}
	if !got.May("web", "ssh") || got.May("web", "web") || got.May("other", "ssh") {
		t.Error("May is wrong")
	}
}

func TestParseMembersErrors(t *testing.T) {
	t.Parallel()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := FormatKey(pub)
	short := KeyPrefix + base64.StdEncoding.EncodeToString(pub[:31])
	member := func(name, key, grant string) string {
		return "member \"" + name + "\" {\n  key = \"" + key + "\"\n  may_grant = " + grant + "\n}\n"
	}
	tests := []struct {
		name string
		src  string
		want string // the first error, "file:line,col-col: summary"
	}{
		{"duplicate", member("a", key, `{ web = ["ssh"] }`) + member("a", key, `{ web = ["ssh"] }`),
			`members.hcl:5,8-11: Duplicate member; Member "a" is already defined at members.hcl:1,8`},
		{"wrong prefix", member("a", "ssh-ed25519:"+key[len(KeyPrefix):], `{ web = ["ssh"] }`),
			`members.hcl:2,9-`},
		{"wrong length", member("a", short, `{ web = ["ssh"] }`),
			`members.hcl:2,9-`},
		{"bad base64", member("a", KeyPrefix+"!!!!", `{ web = ["ssh"] }`),
			`members.hcl:2,9-`},
		{"empty may_grant", member("a", key, `{}`),
			`members.hcl:3,15-17: Empty may_grant`},
		{"empty door list", member("a", key, `{ web = [] }`),
			`members.hcl:3,23-25: Empty door list`},
		{"may_grant not a map", member("a", key, `["ssh"]`),
			`members.hcl:3,15-22: Invalid may_grant`},
		{"bad name", member("a:b", key, `{ web = ["ssh"] }`),
			`members.hcl:1,8-13: Invalid member name`},
		{"bad group", member("a", key, `{ "w.b" = ["ssh"] }`),
			`members.hcl:3,17-22: Invalid group`},
		{"missing key", "member \"a\" {\n  may_grant = { web = [\"ssh\"] }\n}\n",
			`members.hcl:1,1-11: Incomplete member; Member "a" needs key`},
		{"unknown attribute", "member \"a\" {\n  key = \"" + key + "\"\n  may_grant = { web = [\"ssh\"] }\n  groups = []\n}\n",
			`members.hcl:4,3-9: Unsupported argument`},
		{"deep nesting", "x = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n",
			`members.hcl:1,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, diags := ParseMembers("members.hcl", []byte(tt.src))
			if !diags.HasErrors() || m != nil {
				t.Fatalf("no error; members %v", m)
			}
			if got := diags.Errs()[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first error:\n got %s\nwant %s...", got, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKey(FormatKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	enc := base64.StdEncoding.EncodeToString(pub)
	for _, bad := range []string{"", enc, "ed25519:", "Ed25519:" + enc, "ed25519:" + enc[:len(enc)-1], "ed25519:" + enc + "AAAA", "ed25519:" + enc[:20] + "\n" + enc[20:]} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/fleet"
)

// runSesame runs sesame with args and returns the exit code, stdout and
// stderr.
func runSesame(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// stanzaKey returns the key of the member stanza in out.
func stanzaKey(t *testing.T, out, member string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^member "` + member + `" \{\n  key       = "(ed25519:[A-Za-z0-9+/=]+)"\n  may_grant = \{ \}\n\}\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no member %q stanza in:\n%s", member, out)
	}
	return m[1]
}

// TestKeygenFleet: keygen --fleet writes a 0600 private key whose public
// half is the key of the stanza it prints, refuses to overwrite without
// --force, and never prints the private key.
func TestKeygenFleet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "bastion-1.key")
	code, out, errs := runSesame("keygen", "--fleet", "-o", key)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", st, err)
	}
	b, _ := os.ReadFile(key)
	priv, err := fleet.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	// The member's name defaults to the file's name.
	pub := stanzaKey(t, out, "bastion-1")
	if got, err := fleet.ParseKey(pub); err != nil || !got.Equal(priv.Public()) {
		t.Errorf("stanza key %s (%v) is not the key file's public key", pub, err)
	}
	if strings.Contains(out, strings.TrimSpace(strings.TrimPrefix(string(b), fleet.PrivateKeyPrefix))) {
		t.Error("stdout holds the private key")
	}

	if code, _, errs := runSesame("keygen", "--fleet", "-o", key); code != 1 || !strings.Contains(errs, "exists; use --force") {
		t.Errorf("over an existing file: exit %d, %q; want 1 and a refusal", code, errs)
	}
	if b2, _ := os.ReadFile(key); !bytes.Equal(b, b2) {
		t.Error("the refused run changed the key file")
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runSesame("keygen", "--fleet", "--force", "-o", key, "--member", "web-7")
	if code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errs)
	}
	b2, _ := os.ReadFile(key)
	if st, _ := os.Stat(key); bytes.Equal(b, b2) || st.Mode().Perm() != 0o600 {
		t.Errorf("--force: same key or mode %04o; want a new 0600 key", st.Mode().Perm())
	}
	stanzaKey(t, out, "web-7")
}

func TestKeygenFleetRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--fleet"}, "--fleet writes a private key to a file only: give -o FILE"},
		{[]string{"--fleet", "-o", "-"}, "--fleet writes a private key to a file only"},
		{[]string{"--fleet", "-o", filepath.Join(dir, "a.key"), "--member", "a.b"}, `--member "a.b": a member name is`},
		{[]string{"--fleet", "-o", filepath.Join(dir, "host.example.key")}, `"host.example" is not a member name: give --member NAME`},
		{[]string{"--fleet", "--spa", "-o", filepath.Join(dir, "b.key")}, "--fleet and --spa"},
		{[]string{"--fleet", "--server", "h", "-o", filepath.Join(dir, "c.key")}, "--server belongs to --spa"},
		{[]string{"--member", "m", "-o", filepath.Join(dir, "d.key")}, "--member belongs to --fleet"},
	} {
		code, out, errs := runSesame(append([]string{"keygen"}, tt.args...)...)
		if code != 2 || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("keygen %q: exit %d, stdout %q, stderr %q; want exit 2, no output and %q", tt.args, code, out, errs, tt.want)
		}
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("refused runs wrote %v", names)
	}
}

// TestCheckFleet: a fleet config made with keygen --fleet passes sesame
// check, which prints the fleet; a key of another member, a key file
// others may read, or a door that may_grant does not cover fail it at
// their position.
func TestCheckFleet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "bastion-1.key")
	_, out, _ := runSesame("keygen", "--fleet", "-o", key)
	members := strings.Replace(out[strings.Index(out, "\nmember ")+1:], "may_grant = { }", `may_grant = { web = ["ssh"] }`, 1)
	_, out2, _ := runSesame("keygen", "--fleet", "-o", filepath.Join(dir, "bastion-2.key"))
	members += strings.Replace(out2[strings.Index(out2, "\nmember ")+1:], "may_grant = { }", `may_grant = { web = ["ssh", "www"] }`, 1)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("members.hcl", members)
	cfg := filepath.Join(dir, "sesame.hcl")
	src := `fleet {
  name    = "prod"
  member  = "bastion-1"
  key     = "bastion-1.key"
  members = "members.hcl"
  groups  = ["web"]
  nats {
    servers = ["nats://192.0.2.10:4222", "nats://192.0.2.11:4222"]
  }
}
door "ssh" {
  sequence     = ["7000/tcp", "8000/udp", "9000/tcp"]
  open         = ["22/tcp"]
  fleet_groups = ["web"]
  confirm      = false
}
`
	write("sesame.hcl", src)
	code, out, errs := runSesame("check", "-c", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		cfg + ": ok\n",
		"fleet:      prod, member bastion-1, groups web, servers nats://192.0.2.10:4222,nats://192.0.2.11:4222, max skew 2s\n",
		"  ssh: publishes to web\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// bastion-2 may grant www in web, which this host does not define.
	if !strings.Contains(errs, "Warning: Door granted in the fleet but not defined here") || !strings.Contains(errs, "on "+cfg+" line 6") {
		t.Errorf("check stderr lacks the unknown-door warning at line 6:\n%s", errs)
	}

	for _, tt := range []struct {
		name, old, new string
		mode           os.FileMode
		want           []string
	}{
		{"other member's key", `key     = "bastion-1.key"`, `key     = "bastion-2.key"`, 0o600,
			[]string{"Error: Key does not match members.hcl", "on " + cfg + " line 4", `member "bastion-1"'s key`}},
		{"key readable by others", "", "", 0o644,
			[]string{"Error: Key file readable by others", "on " + cfg + " line 4", "has mode 0644", "Run chmod 600 " + key}},
		{"door not in may_grant", `open         = ["22/tcp"]`, "open         = [\"22/tcp\"]\n}\ndoor \"www\" {\n  sequence = [\"7100/tcp\", \"8100/udp\", \"9100/tcp\"]\n  open = [443]", 0o600,
			[]string{"Error: Not in may_grant", "on " + cfg + " line 18", `Door "www" publishes to group "web"`}},
	} {
		write("sesame.hcl", strings.Replace(src, tt.old, tt.new, 1))
		if err := os.Chmod(key, tt.mode); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runSesame("check", "-c", cfg)
		if code != 1 || out != "" {
			t.Errorf("%s: exit %d, stdout %q; want 1 and nothing", tt.name, code, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tt.name, w, errs)
			}
		}
	}
}

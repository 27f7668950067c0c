package fleet

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/sesame-knock/sesame/policy"
)

// configSrc is a fleet config whose files are relative to its directory.
const configSrc = `fleet {
  name    = "prod"
  member  = "bastion-1"
  key     = "bastion-1.key"
  members = "members.hcl"
  groups  = ["web", "db"]
  nats {
    servers = ["nats://192.0.2.10:4222"]
  }
}
door "ssh" {
  sequence     = ["7000/tcp", "8000/udp", "9000/tcp"]
  open         = ["22/tcp"]
  fleet_groups = ["web", "db"]
  confirm      = false
}
`

// configDir is a directory with sesame.hcl, bastion-1.key (0600) and a
// members.hcl in which bastion-1 may open ssh in web and db, and
// bastion-2 ssh and www in web, and smtp in mail.
type configDir struct {
	dir     string
	key     ed25519.PrivateKey
	other   ed25519.PrivateKey // bastion-2's
	members string             // members.hcl's content
}

func newConfigDir(t *testing.T) *configDir {
	t.Helper()
	c := &configDir{dir: t.TempDir()}
	var err error
	if c.key, err = GenerateKey(nil); err != nil {
		t.Fatal(err)
	}
	if c.other, err = GenerateKey(nil); err != nil {
		t.Fatal(err)
	}
	c.members = fmt.Sprintf(`member "bastion-1" {
  key       = %q
  may_grant = { web = ["ssh"], db = ["ssh"] }
}
member "bastion-2" {
  key       = %q
  may_grant = { web = ["ssh", "www"], mail = ["smtp"] }
}
`, FormatKey(c.key.Public().(ed25519.PublicKey)), FormatKey(c.other.Public().(ed25519.PublicKey)))
	c.write(t, "bastion-1.key", FormatPrivateKey(c.key), 0o600)
	c.write(t, "members.hcl", c.members, 0o644)
	c.write(t, "sesame.hcl", configSrc, 0o644)
	return c
}

func (c *configDir) write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// load parses sesame.hcl (which must be valid) and runs LoadConfig.
func (c *configDir) load(t *testing.T) (*Config, hcl.Diagnostics) {
	t.Helper()
	p, diags := policy.Load(filepath.Join(c.dir, "sesame.hcl"))
	if diags.HasErrors() {
		t.Fatalf("policy: %s", diags.Error())
	}
	return LoadConfig(p)
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	c := newConfigDir(t)
	cfg, diags := c.load(t)
	if cfg == nil {
		t.Fatalf("LoadConfig: %s", diags.Error())
	}
	if !cfg.Key.Equal(c.key) {
		t.Error("Key is not the key file's")
	}
	if cfg.Member != "bastion-1" || cfg.Members.Len() != 2 {
		t.Errorf("Member %q, %d members; want bastion-1 of 2", cfg.Member, cfg.Members.Len())
	}
	wantSelf := Self{
		Fleet: "prod", Groups: []string{"web", "db"}, MaxSkew: 2 * time.Second,
		Doors: map[string]Door{"ssh": {Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, OpenFor: 30 * time.Second}},
	}
	if diff := cmp.Diff(wantSelf, cfg.Self); diff != "" {
		t.Errorf("Self mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"ssh": {"web", "db"}}, cfg.Publish); diff != "" {
		t.Errorf("Publish mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"nats://192.0.2.10:4222"}, cfg.Servers); diff != "" {
		t.Errorf("Servers mismatch (-want +got):\n%s", diff)
	}
	// bastion-2 may grant www in web, which this host applies and does
	// not define; smtp is in mail, which it does not apply.
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Fatalf("diagnostics: want one warning, got:\n%s", diags.Error())
	}
	w := diags[0]
	if at := w.Subject.Start; at.Line != 6 || at.Column != 14 ||
		!strings.Contains(w.Detail, `member bastion-2 grant door "www" in group "web"`) || !strings.Contains(w.Detail, "unknown-door") {
		t.Errorf("warning at %d,%d: %s; %s", at.Line, at.Column, w.Summary, w.Detail)
	}
	// A record that bastion-1 signs with the loaded key passes Decide
	// against the loaded view: the pieces fit together.
	now := time.UnixMilli(1_800_000_000_000)
	b, err := Sign(cfg.Key, Payload{Fleet: "prod", Group: "db", Origin: "bastion-1", ID: NewID(), Kind: KindOpen,
		Door: "ssh", Src: "198.51.100.2", Ports: []string{"22/tcp"}, IssuedAt: now.UnixMilli(), NotAfter: now.Add(10 * time.Second).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if d := DecideBytes(b, cfg.Members, cfg.Self, now, NewSeen(8)); !d.Applies() {
		t.Errorf("Decide on the loaded config: %s", d.Reason)
	}
}

func TestLoadConfigNoFleet(t *testing.T) {
	t.Parallel()
	p, diags := policy.Parse("x.hcl", []byte("door \"d\" {\n  sequence = [7000, 8000, 9000]\n  open = [22]\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if cfg, diags := LoadConfig(p); cfg != nil || diags != nil {
		t.Errorf("LoadConfig without a fleet block = %v, %v; want nil, nil", cfg, diags)
	}
}

// TestLoadConfigErrors: each mistake in the files the fleet block names is
// an error at the attribute that names them, and LoadConfig returns nil.
func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		change    func(t *testing.T, c *configDir)
		line, col int
		want      string // in summary; detail
	}{
		{"key file 0644", func(t *testing.T, c *configDir) {
			if err := os.Chmod(filepath.Join(c.dir, "bastion-1.key"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 4, 13, "Key file readable by others; The fleet key file " + "DIR/bastion-1.key has mode 0644: group or others may read or write it, and whoever reads it can open doors across the fleet. Run chmod 600 DIR/bastion-1.key."},
		{"key file 0640", func(t *testing.T, c *configDir) {
			if err := os.Chmod(filepath.Join(c.dir, "bastion-1.key"), 0o640); err != nil {
				t.Fatal(err)
			}
		}, 4, 13, "has mode 0640"},
		{"key file missing", func(t *testing.T, c *configDir) {
			if err := os.Remove(filepath.Join(c.dir, "bastion-1.key")); err != nil {
				t.Fatal(err)
			}
		}, 4, 13, "Missing key file; The fleet key file DIR/bastion-1.key does not exist. sesame keygen --fleet -o DIR/bastion-1.key --member bastion-1"},
		{"key file not a key", func(t *testing.T, c *configDir) {
			c.write(t, "bastion-1.key", FormatKey(c.key.Public().(ed25519.PublicKey))+"\n", 0o600)
		}, 4, 13, `Invalid key file; The fleet key file DIR/bastion-1.key: it does not start with "ed25519-private:"`},
		{"key file short", func(t *testing.T, c *configDir) {
			c.write(t, "bastion-1.key", PrivateKeyPrefix+"AAAA\n", 0o600)
		}, 4, 13, "the key has 3 bytes, want 32"},
		{"key of another member", func(t *testing.T, c *configDir) {
			c.write(t, "bastion-1.key", FormatPrivateKey(c.other), 0o600)
		}, 4, 13, "Key does not match members.hcl; The fleet key file DIR/bastion-1.key holds the key of " + FormatKey(nil)},
		{"member not in members.hcl", func(t *testing.T, c *configDir) {
			c.write(t, "members.hcl", strings.Replace(c.members, `"bastion-1"`, `"bastion-9"`, 1), 0o644)
		}, 3, 13, `Unknown member; Member "bastion-1" is not in DIR/members.hcl`},
		{"may_grant misses a group", func(t *testing.T, c *configDir) {
			c.write(t, "members.hcl", strings.Replace(c.members, `, db = ["ssh"]`, ``, 1), 0o644)
		}, 14, 26, `Not in may_grant; Door "ssh" publishes to group "db", but member "bastion-1"'s may_grant in DIR/members.hcl does not give it door "ssh" in "db"`},
		{"members file missing", func(t *testing.T, c *configDir) {
			if err := os.Remove(filepath.Join(c.dir, "members.hcl")); err != nil {
				t.Fatal(err)
			}
		}, 5, 13, "Cannot read members file DIR/members.hcl"},
		{"members file invalid", func(t *testing.T, c *configDir) {
			c.write(t, "members.hcl", "member \"x\" {}\n", 0o644)
		}, 1, 1, `Incomplete member; Member "x" needs key`},
		{"creds file 0644", func(t *testing.T, c *configDir) {
			c.write(t, "n.creds", "-----BEGIN NATS USER JWT-----\n", 0o644)
			c.write(t, "sesame.hcl", strings.Replace(configSrc, "  }\n}", "    creds = \"n.creds\"\n  }\n}", 1), 0o644)
		}, 9, 13, "Credentials file readable by others; The NATS credentials file DIR/n.creds has mode 0644: group or others may read or write it. Run chmod 600 DIR/n.creds."},
		{"creds file missing", func(t *testing.T, c *configDir) {
			c.write(t, "sesame.hcl", strings.Replace(configSrc, "  }\n}", "    creds = \"n.creds\"\n  }\n}", 1), 0o644)
		}, 9, 13, "Unreadable creds file;"},
		{"ca file a directory", func(t *testing.T, c *configDir) {
			if err := os.Mkdir(filepath.Join(c.dir, "ca.pem"), 0o755); err != nil {
				t.Fatal(err)
			}
			c.write(t, "sesame.hcl", strings.Replace(configSrc, "  }\n}", "    ca = \"ca.pem\"\n  }\n}", 1), 0o644)
		}, 9, 10, "Unreadable ca file; The fleet's ca file: DIR/ca.pem: not a regular file."},
		{"ca file not PEM", func(t *testing.T, c *configDir) {
			c.write(t, "ca.pem", "not a certificate\n", 0o644)
			c.write(t, "sesame.hcl", strings.Replace(configSrc, "  }\n}", "    ca = \"ca.pem\"\n  }\n}", 1), 0o644)
		}, 9, 10, "Invalid ca file; The fleet's ca file DIR/ca.pem holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newConfigDir(t)
			tt.change(t, c)
			cfg, diags := c.load(t)
			if cfg != nil || !diags.HasErrors() {
				t.Fatalf("accepted: %s", diags.Error())
			}
			want := strings.ReplaceAll(tt.want, "DIR", c.dir)
			if tt.name == "key of another member" {
				want = strings.Replace(want, FormatKey(nil), FormatKey(c.other.Public().(ed25519.PublicKey)), 1)
			}
			for _, d := range diags.Errs() {
				var x *hcl.Diagnostic
				if e, ok := d.(*hcl.Diagnostic); ok {
					x = e
				}
				if x != nil && x.Subject != nil && x.Subject.Start.Line == tt.line && x.Subject.Start.Column == tt.col &&
					strings.Contains(x.Summary+"; "+x.Detail, want) {
					return
				}
			}
			t.Errorf("want an error at %d,%d containing %q, got:\n%s", tt.line, tt.col, want, diags.Error())
		})
	}
}

package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/fleet"
)

// TestRunRefusesBadFleetConfig: sesame run makes the checks sesame check
// makes on the files a fleet block names, and refuses to start (before
// touching any interface or table) when they fail; a good one loads.
func TestRunRefusesBadFleetConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, err := fleet.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"b1.key":      fleet.FormatPrivateKey(priv),
		"members.hcl": "member \"b1\" {\n  key = \"" + fleet.FormatKey(priv.Public().(ed25519.PublicKey)) + "\"\n  may_grant = { web = [\"ssh\"] }\n}\n",
		"sesame.hcl": `fleet {
  name    = "prod"
  member  = "b1"
  key     = "b1.key"
  members = "members.hcl"
  groups  = ["web"]
  nats {
    servers = ["nats://192.0.2.10:4222"]
  }
}
door "ssh" {
  sequence     = ["7000/tcp", "8000/udp", "9000/tcp"]
  open         = ["22/tcp"]
  fleet_groups = ["web"]
  confirm      = false
}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "sesame.hcl")
	if p, fc, err := load(slog.New(slog.DiscardHandler), cfg); err != nil || p.Fleet == nil || fc == nil {
		t.Fatalf("load(good fleet config) = %v, %v, %v", p, fc, err)
	}
	if err := os.Chmod(filepath.Join(dir, "b1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Options{ConfigPath: cfg})
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Diags.Error(), "Key file readable by others") {
		t.Fatalf("Run with a 0644 fleet key = %v, want a ConfigError about the key file's mode", err)
	}
}

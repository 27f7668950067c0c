package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// sesame down removes only a table sesame made: `--table X --yes` on
// someone else's table, and a config that does not load (which used to
// fall back to table "sesame" silently), exit 1 and remove nothing.
func TestAttackDownForeignTable(t *testing.T) {
	t.Parallel()
	ns := nstest.New(t, "down")
	ns.Exec(t, "nft", "add", "table", "inet", "victim")
	ns.Exec(t, "nft", "add", "chain", "inet", "victim", "input", "{ type filter hook input priority 0; policy accept; }")

	out, err := ns.Try(SesameBin, "down", "--table", "victim", "--yes")
	if exitCode(err) != 1 || !strings.Contains(out, "not created by sesame") {
		t.Errorf("down --table victim --yes: exit %d, %q; want exit 1 and a refusal", exitCode(err), out)
	}
	if _, err := ns.Try("nft", "list", "table", "inet", "victim"); err != nil {
		t.Errorf("foreign table inet victim was deleted by sesame down")
	}

	// Sesame's own table, as the daemon installs it.
	cfg := WriteConfig(t, "table = \"sesame\"\n"+sshDoor("30s", "5s"))
	ruleset := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(ruleset, []byte(ns.Exec(t, SesameBin, "check", "-c", cfg, "--ruleset")), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "-f", ruleset)

	bad := filepath.Join(t.TempDir(), "missing.hcl")
	out, err = ns.Try(SesameBin, "down", "-c", bad, "--yes")
	if exitCode(err) != 1 || !strings.Contains(out, "--table") || strings.Contains(out, "removed table") {
		t.Errorf("down with an unloadable config: exit %d, %q; want exit 1 and a pointer to --table", exitCode(err), out)
	}
	if _, err := ns.Try("nft", "list", "table", "inet", "sesame"); err != nil {
		t.Errorf("table inet sesame was deleted although the config does not load")
	}

	if out := ns.Exec(t, SesameBin, "down", "-c", cfg, "--yes"); !strings.Contains(out, "removed table inet sesame") {
		t.Errorf("down of sesame's own table: %q", out)
	}
	if out, err := ns.Try("nft", "list", "table", "inet", "sesame"); err == nil {
		t.Errorf("table still there after down --yes:\n%s", out)
	}
}

package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write makes mode 0600 files, refuses an existing one, and with force
// replaces it with a new 0600 file even when the old one was readable.
func TestWrite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	check := func(want string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", path, fi, err)
		}
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("content %q, want %q", b, want)
		}
	}
	if err := Write(path, "one\n", false); err != nil {
		t.Fatal(err)
	}
	check("one\n")
	if err := Write(path, "two\n", false); err == nil || !strings.Contains(err.Error(), "exists; use --force") {
		t.Errorf("second Write = %v, want a refusal", err)
	}
	check("one\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, "three\n", true); err != nil {
		t.Fatal(err)
	}
	check("three\n")
}

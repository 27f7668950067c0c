package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
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

// Read returns a 0600 (or stricter) file and refuses one that is missing,
// not regular, or open to group or others, naming the mode and the fix.
func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	if err := Write(path, "secret\n", false); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(path); err != nil || string(b) != "secret\n" {
		t.Errorf("Read(0600) = %q, %v", b, err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err != nil {
		t.Errorf("Read(0400) = %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		var me *ModeError
		if !errors.As(err, &me) || me.Mode != mode {
			t.Fatalf("Read(%04o) = %v, want a ModeError", mode, err)
		}
		if want := fmt.Sprintf("has mode %04o: group or others may read or write it. Run chmod 600 %s", mode, path); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Read(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Read(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Read(dir) = %v, want ErrNotRegular", err)
	}
}

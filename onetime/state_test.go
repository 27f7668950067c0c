package onetime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarkUsed(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state") // created by MarkUsed
	path := StateFile(dir, "ssh")
	seqs, err := Parse([]byte("1,2,3\n4,5,6\n"))
	if err != nil {
		t.Fatal(err)
	}
	used, err := ReadUsed(path)
	if err != nil || len(used) != 0 {
		t.Fatalf("ReadUsed of a missing file = %v, %v; want empty, nil", used, err)
	}
	a, b := seqs[0].Key(), seqs[1].Key()
	if err := MarkUsed(path, a); err != nil {
		t.Fatal(err)
	}
	if err := MarkUsed(path, a); !errors.Is(err, ErrUsed) {
		t.Errorf("marking a used sequence again: %v, want ErrUsed", err)
	}
	if err := MarkUsed(path, b); err != nil {
		t.Fatal(err)
	}
	used, err = ReadUsed(path)
	if err != nil || !used[a] || !used[b] || len(used) != 2 {
		t.Errorf("ReadUsed = %v, %v; want both keys", used, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v; want 0600", st.Mode(), err)
	}
	if dst, err := os.Stat(dir); err != nil || dst.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, %v; want 0700", dst.Mode(), err)
	}
	if err := Unmark(path, a); err != nil {
		t.Fatal(err)
	}
	if err := Unmark(path, a); err != nil {
		t.Errorf("Unmark of a key not recorded: %v", err)
	}
	if used, _ := ReadUsed(path); used[a] || !used[b] {
		t.Errorf("after Unmark: %v; want only the second key", used)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the state dir, want 1 (no temp file left)", len(ents))
	}
}

func TestReadUsedCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"no header": "0123\n",
		"bad key":   stateHeader + "\n" + strings.Repeat("g", 64) + "\n",
		"short key": stateHeader + "\nabcd\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadUsed(path); !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: ReadUsed = %v, want ErrCorruptState", name, err)
		}
		if err := MarkUsed(path, strings.Repeat("a", 64)); !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: MarkUsed = %v, want ErrCorruptState (never overwrite what it cannot read)", name, err)
		}
	}
}

// CheckWritable accepts a writable directory, or a missing one under a
// writable parent, and refuses a path under a regular file (what root
// cannot write either; a read-only mount is the e2e test's).
func TestCheckWritable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{dir, filepath.Join(dir, "a", "b")} {
		if err := CheckWritable(ok); err != nil {
			t.Errorf("CheckWritable(%s) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{file, filepath.Join(file, "state")} {
		if err := CheckWritable(bad); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("CheckWritable(%s) = %v, want not a directory", bad, err)
		}
	}
}

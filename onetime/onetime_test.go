package onetime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	got, err := Parse([]byte("# c\n 7000,8000:udp, 9000/tcp\n\n  #7001 8001\n7002\t8002:UDP\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Seq{
		{Line: 2, Steps: []Step{{7000, "tcp"}, {8000, "udp"}, {9000, "tcp"}}},
		{Line: 5, Steps: []Step{{7002, "tcp"}, {8002, "udp"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"7000,0", "7000:icmp", "7000,7000", "x"} {
		var le *LineError
		if _, err := Parse([]byte(bad)); !errors.As(err, &le) || le.Line != 1 {
			t.Errorf("Parse(%q) = %v, want a line 1 error", bad, err)
		}
	}
}

func TestMarkUsed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, []byte("1,2,3\n4,5,6\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := MarkUsed(path, 1); err != nil {
		t.Fatal(err)
	}
	if err := MarkUsed(path, 1); !errors.Is(err, ErrChanged) {
		t.Errorf("marking a used line again: %v, want ErrChanged", err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "#1,2,3\n4,5,6\n" || st.Mode().Perm() != 0o640 {
		t.Errorf("file %q mode %v, want the first line commented and mode 0640", b, st.Mode())
	}
	seqs, err := Read(path)
	if err != nil || len(seqs) != 1 || seqs[0].Line != 2 {
		t.Errorf("Read after MarkUsed = %v, %v; want line 2 only", seqs, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("%d files in the directory, want 1 (no temp file left)", len(ents))
	}
}

func TestMarkUnused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(path, []byte("# a note\n1,2,3\n4,5,6\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := MarkUsed(path, 2); err != nil {
		t.Fatal(err)
	}
	if err := MarkUnused(path, 2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# a note\n1,2,3\n4,5,6\n" {
		t.Errorf("after MarkUnused: %q, want the file as it was", b)
	}
	for _, line := range []int{1, 2, 9} { // a real comment, an unused line, no line
		if err := MarkUnused(path, line); !errors.Is(err, ErrChanged) {
			t.Errorf("MarkUnused line %d: %v, want ErrChanged", line, err)
		}
	}
}

package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/onetime"
)

// A one-time door's unused sequences are the file's uncommented lines
// (a line commented out, as knockd and older sesame marked a used one,
// stays used) whose steps the door's state file in state_dir does not
// record, each sequence once however often it is written.
func TestOneTimeState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seqFile := filepath.Join(dir, "seqs")
	if err := os.WriteFile(seqFile, []byte("#7001,7302,7103\n7011,7312,7113\n7021,7322,7123\n7011 7312 7113\n7031,7332,7133\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	used, err := onetime.Parse([]byte("7021/tcp 7322/tcp 7123/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := onetime.MarkUsed(onetime.StateFile(state, "o"), used[0].Key()); err != nil {
		t.Fatal(err)
	}
	src := "state_dir = \"" + state + "\"\ndoor \"o\" {\n  one_time_sequences = \"" + seqFile + "\"\n  open = [\"2222\"]\n}\n"
	p, diags := Parse("o.hcl", []byte(src))
	if len(diags.All()) != 0 {
		t.Fatalf("want no diagnostics, got:\n%s", diags.Error())
	}
	d := p.Doors[0]
	var lines []int
	for _, s := range d.OneTime {
		lines = append(lines, s.Line)
	}
	if diff := cmp.Diff([]int{2, 5}, lines); diff != "" {
		t.Errorf("unused lines (-want +got):\n%s", diff)
	}
	if d.OneTimeUsed != filepath.Join(state, "one-time-o") || d.OneTimeFile != seqFile {
		t.Errorf("OneTimeUsed %q, OneTimeFile %q", d.OneTimeUsed, d.OneTimeFile)
	}
	if b, _ := os.ReadFile(seqFile); !strings.HasPrefix(string(b), "#7001") || strings.Count(string(b), "#") != 1 {
		t.Errorf("the sequence file changed: %q", b)
	}

	// A state file that cannot be read keeps the door shut: an error.
	if err := os.WriteFile(d.OneTimeUsed, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags = Parse("o.hcl", []byte(src))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "o.hcl:3,24") || !strings.Contains(diags.Error(), "Unreadable one-time state") {
		t.Errorf("corrupt state: diagnostics %q, want an error at the one_time_sequences value", diags.Error())
	}
}

// oneTimeKey is the state file key of the sequence written line.
func oneTimeKey(line string) string {
	seqs, err := onetime.Parse([]byte(line))
	if err != nil || len(seqs) != 1 {
		panic(fmt.Sprintf("oneTimeKey(%q): %v", line, err))
	}
	return seqs[0].Key()
}

package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/policy"
)

// A one-time knock is recorded in the door's state file in state_dir
// before its grant; the sequence file is only read (it may sit on a
// read-only /etc), and a policy read afresh no longer offers the sequence.
func TestOneTimeRecordsInStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seqFile := filepath.Join(dir, "seqs")
	const seqs = "7001,7002,7003\n7011,7012,7013\n"
	if err := os.WriteFile(seqFile, []byte(seqs), 0o600); err != nil {
		t.Fatal(err)
	}
	src := []byte(`state_dir = "` + filepath.Join(dir, "state") + `"
door "ot" {
  one_time_sequences = "` + seqFile + `"
  open = ["2222/tcp"]
}
`)
	p, diags := policy.Parse("ot.hcl", src)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	stale, _ := policy.Parse("ot.hcl", src)
	tbl := &fakeTable{}
	l, buf, _ := newTestLoop(t, tbl, p)
	for _, port := range []uint16{7001, 7002, 7003} {
		l.observe(syn(port))
	}
	l.flush()
	if len(tbl.calls) != 1 || len(tbl.calls[0].Grants) != 1 {
		t.Fatalf("Apply calls %+v, want one grant\n%s", tbl.calls, buf)
	}
	if b, _ := os.ReadFile(seqFile); string(b) != seqs {
		t.Errorf("the sequence file changed: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d entries beside the sequence file's, want it and state/", len(ents))
	}
	if got := l.p.Doors[0].Sequence; len(got) != 3 || got[0].Port != 7011 {
		t.Errorf("door sequence after use %v, want the next line's", got)
	}
	again, diags := policy.Parse("ot.hcl", src)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if d := again.Doors[0]; len(d.OneTime) != 1 || d.OneTime[0].Line != 2 {
		t.Errorf("a fresh policy offers %+v, want line 2 only", d.OneTime)
	}

	// A policy read before the use (a reload racing it) still offers line
	// 1: the state file refuses it, and the door moves on to line 2.
	tbl2 := &fakeTable{}
	l2, buf2, _ := newTestLoop(t, tbl2, stale)
	for _, port := range []uint16{7001, 7002, 7003} {
		l2.observe(syn(port))
	}
	l2.flush()
	if len(tbl2.calls) != 0 || !strings.Contains(buf2.String(), `msg=one-time-refused door=ot src=198.51.100.2 line=1 reason="sequence already used" spoofable=true`) {
		t.Errorf("a recorded sequence was not refused:\n%s", buf2)
	}
	if got := l2.p.Doors[0].Sequence; len(got) != 3 || got[0].Port != 7011 {
		t.Errorf("door sequence after the refusal %v, want the next line's", got)
	}
}

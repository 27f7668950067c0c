package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// One-time sequences: consumed in order, a used one (replayed) opens
// nothing, the file is rewritten with used lines commented out, and a
// daemon killed mid-file and restarted keeps refusing used ones and accepts
// the next; the door warns when few are left and when they run out.
func TestOneTimeSequences(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	dir := t.TempDir()
	seqFile := filepath.Join(dir, "ssh.seqs")
	orig := "# one-time sequences\n31001,32001:udp,33001\n31002 32002:udp 33002\n\n31003:tcp, 32003:udp, 33003:tcp\n"
	if err := os.WriteFile(seqFile, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config("reject", fmt.Sprintf("door \"ot\" {\n  one_time_sequences = %q\n  open = [\"2222/tcp\"]\n  open_for = \"30s\"\n}\n", seqFile))
	tp := NewTopo(t)
	Listen(t, tp.Server, 2222)
	cfgPath := WriteConfig(t, cfg)
	e := &env{Topo: tp, D: StartDaemonFile(t, tp.Server, cfgPath)}
	seq1 := []string{"31001", "32001:udp", "33001"}
	seq2 := []string{"31002", "32002:udp", "33002"}
	seq3 := []string{"31003", "32003:udp", "33003"}

	// Out of order: the second sequence before the first opens nothing.
	knock(t, e.Stranger, ServerStranger4, seq2...)
	knock(t, e.Client, ServerClient4, seq1...)
	e.waitGrant(t, Client4, 2222)
	e.waitLog(t, Msg("one-time-used", "door", "ot", "line", "2"), "line 2 used")
	e.waitLog(t, Msg("one-time-low", "door", "ot", "left", "2"), "the low warning")
	e.noGrant(t, Stranger4)
	// The replay of the first from the stranger fails; the second works.
	knock(t, e.Stranger, ServerStranger4, seq1...)
	knock(t, e.Stranger, ServerStranger6, seq2...)
	e.waitGrant(t, Stranger6, 2222)
	e.noGrant(t, Stranger4)
	want := "# one-time sequences\n#31001,32001:udp,33001\n#31002 32002:udp 33002\n\n31003:tcp, 32003:udp, 33003:tcp\n"
	if b, _ := os.ReadFile(seqFile); string(b) != want {
		t.Errorf("sequence file:\n%s\nwant:\n%s", b, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files, want only the sequence file (no temp left)", len(ents))
	}

	// Crash and restart: used sequences stay used, the next one opens.
	e.D.Kill()
	e.D = StartDaemonFile(t, tp.Server, cfgPath)
	knock(t, e.Client, ServerClient6, seq2...)
	knock(t, e.Client, ServerClient6, seq1...)
	knock(t, e.Stranger, ServerStranger4, seq3...)
	e.waitGrant(t, Stranger4, 2222)
	e.noGrant(t, Client6)
	e.waitLog(t, Msg("one-time-exhausted", "door", "ot"), "the exhausted warning")
	if n := e.D.CountLog(Msg("open", "door", "ot")); n != 1 {
		t.Errorf("restarted daemon logged %d opens, want 1 (seq3 only)", n)
	}

	// Exhausted: nothing opens; SIGHUP re-reads the file with a new line.
	knock(t, e.Client, ServerClient6, seq3...)
	if err := os.WriteFile(seqFile, []byte(want[:len(want)-len("31003:tcp, 32003:udp, 33003:tcp\n")]+"#31003\n31004,32004:udp,33004\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.D.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, Msg("reloaded"), "the reload")
	knock(t, e.Client, ServerClient6, "31004", "32004:udp", "33004")
	e.waitGrant(t, Client6, 2222)
	if n := e.D.CountLog(Msg("open", "door", "ot", "src", Client6.String())); n != 1 {
		t.Errorf("client6 opens: %d, want 1 (seq3 was exhausted, seq4 after reload)", n)
	}
	if b, _ := os.ReadFile(seqFile); !strings.HasSuffix(string(b), "#31004,32004:udp,33004\n") {
		t.Errorf("sequence file after the reload's use:\n%s", b)
	}

}

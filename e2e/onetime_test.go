package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// One-time sequences: consumed in order, a used one (replayed) opens
// nothing, the used ones are recorded in state_dir (the sequence file is
// only read), and a daemon killed mid-file and restarted keeps refusing
// used ones and accepts the next; the door warns when few are left and
// when they run out.
func TestOneTimeSequences(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	seqFile := filepath.Join(dir, "ssh.seqs")
	orig := "# one-time sequences\n31001,32001:udp,33001\n31002 32002:udp 33002\n\n31003:tcp, 32003:udp, 33003:tcp\n"
	if err := os.WriteFile(seqFile, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("state_dir = %q\n", state) + config("reject", fmt.Sprintf("door \"ot\" {\n  one_time_sequences = %q\n  open = [\"2222/tcp\"]\n  open_for = \"30s\"\n}\n", seqFile))
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
	e.waitLog(t, Msg(logevent.OneTimeUsed, "door", "ot", "line", "2"), "line 2 used")
	e.waitLog(t, Msg(logevent.OneTimeLow, "door", "ot", "left", "2"), "the low warning")
	e.noGrant(t, Stranger4)
	// The replay of the first from the stranger fails; the second works.
	knock(t, e.Stranger, ServerStranger4, seq1...)
	knock(t, e.Stranger, ServerStranger6, seq2...)
	e.waitGrant(t, Stranger6, 2222)
	e.noGrant(t, Stranger4)
	// Before #11 the file was rewritten with used lines commented out; it
	// is now only read (it may be on a read-only /etc).
	if b, _ := os.ReadFile(seqFile); string(b) != orig {
		t.Errorf("sequence file changed:\n%s\nwant:\n%s", b, orig)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files, want only the sequence file", len(ents))
	}
	if ents, _ := os.ReadDir(state); len(ents) != 1 || ents[0].Name() != "one-time-ot" {
		t.Errorf("state_dir holds %v, want only one-time-ot (no temp left)", ents)
	}

	// Crash and restart: used sequences stay used, the next one opens.
	e.D.Kill()
	e.D = StartDaemonFile(t, tp.Server, cfgPath)
	knock(t, e.Client, ServerClient6, seq2...)
	knock(t, e.Client, ServerClient6, seq1...)
	knock(t, e.Stranger, ServerStranger4, seq3...)
	e.waitGrant(t, Stranger4, 2222)
	e.noGrant(t, Client6)
	e.waitLog(t, Msg(logevent.OneTimeExhausted, "door", "ot"), "the exhausted warning")
	if n := e.D.CountLog(Msg(logevent.Open, "door", "ot")); n != 1 {
		t.Errorf("restarted daemon logged %d opens, want 1 (seq3 only)", n)
	}

	// Exhausted: nothing opens; SIGHUP re-reads the file with a new line
	// (and the used ones reordered: they stay used).
	knock(t, e.Client, ServerClient6, seq3...)
	exhausted := e.D.CountLog(Msg(logevent.OneTimeExhausted, "door", "ot"))
	if err := os.WriteFile(seqFile, []byte("31003 32003:udp 33003\n31004,32004:udp,33004\n31001,32001:udp,33001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.D.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, Msg(logevent.Reloaded), "the reload")
	knock(t, e.Client, ServerClient6, "31004", "32004:udp", "33004")
	e.waitGrant(t, Client6, 2222)
	if n := e.D.CountLog(Msg(logevent.Open, "door", "ot", "src", Client6.String())); n != 1 {
		t.Errorf("client6 opens: %d, want 1 (seq3 was exhausted, seq4 after reload)", n)
	}
	if err := e.D.WaitCount(5*time.Second, exhausted, Msg(logevent.OneTimeExhausted, "door", "ot")); err != nil {
		t.Errorf("no exhausted warning after the reloaded file's last sequence: %v", err)
	}

}

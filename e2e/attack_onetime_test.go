package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// One-time doors open under the shipped unit's confinement: the daemon
// runs as nobody with only its two capabilities, and the sequence file
// lies in a directory it cannot write (as /etc is under ProtectSystem=
// strict). The used sequence is recorded in state_dir, the sequence file is
// left as it was, and the sequence does not open twice. A state_dir the
// daemon cannot write is refused by `sesame check` and by `sesame run`,
// with the position of one_time_sequences.
func TestAttackOneTimeReadOnlyConfig(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	Listen(t, tp.Server, 2222)
	ro := PublicDir(t) // root's, 0755: nobody reads, cannot write
	seqFile := filepath.Join(ro, "ssh.seqs")
	seqs := "41001,42001:udp,43001\n41002,42002:udp,43002\n"
	if err := os.WriteFile(seqFile, []byte(seqs), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(PublicDir(t), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	door := fmt.Sprintf("door \"ot\" {\n  one_time_sequences = %q\n  open = [\"2222/tcp\"]\n  open_for = \"30s\"\n}\n", seqFile)
	cfgText := fmt.Sprintf("state_dir = %q\n", state) + config("reject", door)
	bin, cfg := PublicCopy(t, WriteConfig(t, cfgText))
	e := &env{Topo: tp, D: StartDaemonWith(t, tp.Server, cfg, bin, Unprivileged, nil)}

	knock(t, e.Client, ServerClient4, "41001", "42001:udp", "43001")
	e.waitGrant(t, Client4, 2222)
	e.waitLog(t, Msg(logevent.OneTimeUsed, "door", "ot", "line", "1"), "line 1 used")
	if b, _ := os.ReadFile(seqFile); string(b) != seqs {
		t.Errorf("the sequence file changed:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(state, "one-time-ot")); err != nil {
		t.Errorf("no state file: %v", err)
	}
	// Replayed from elsewhere: refused; the next line opens.
	knock(t, e.Stranger, ServerStranger4, "41001", "42001:udp", "43001")
	knock(t, e.Stranger, ServerStranger6, "41002", "42002:udp", "43002")
	e.waitGrant(t, Stranger6, 2222)
	e.noGrant(t, Stranger4)
	if err := e.D.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}

	// A state_dir nobody cannot write: check and run say so, pointing at
	// the door's one_time_sequences.
	badState := PublicDir(t)
	badText := fmt.Sprintf("state_dir = %q\n", badState) + config("reject", door)
	_, badCfg := PublicCopy(t, WriteConfig(t, badText))
	line := strings.Count(badText[:strings.Index(badText, "one_time_sequences")], "\n") + 1
	pos := fmt.Sprintf("on %s line %d", badCfg, line)
	for _, verb := range []string{"check", "run"} {
		args := append(append([]string{"10"}, Unprivileged...), bin, verb, "-c", badCfg)
		out, err := tp.Server.Try("timeout", args...)
		if exitCode(err) != 1 || !strings.Contains(out, "One-time state not writable") || !strings.Contains(out, pos) {
			t.Errorf("sesame %s as nobody with state_dir %s: exit %d, want 1 and an error at %s:\n%s", verb, badState, exitCode(err), pos, out)
		}
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/syncbuf"
)

// Daemon is a `sesame run` process in a namespace.
type Daemon struct {
	NS     *nstest.NS
	Config string // path of the config file

	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// WriteConfig writes text to a new config file in the test's temp dir and
// returns its path.
func WriteConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sesame.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartDaemon writes configText to a file and starts the daemon on it in
// ns, as StartDaemonFile does.
func StartDaemon(t testing.TB, ns *nstest.NS, configText string) *Daemon {
	t.Helper()
	return StartDaemonFile(t, ns, WriteConfig(t, configText))
}

// StartDaemonFile runs `sesame run -c path --log-format json --log-level
// debug` in ns and waits (at most 10s) for its "ready" line. When the test
// ends the daemon gets SIGTERM (and SIGKILL 5s later), and if the test
// failed its log is printed.
func StartDaemonFile(t testing.TB, ns *nstest.NS, path string) *Daemon {
	t.Helper()
	// ip netns exec execs the program: the pid is sesame's own.
	return StartDaemonWith(t, ns, path, "", nil, nil)
}

// Stop sends SIGTERM, waits up to 5s, then kills; it returns the exit error
// (nil for status 0). Stopping a stopped daemon returns its first result.
func (d *Daemon) Stop() error {
	select {
	case <-d.done:
		return d.err
	default:
	}
	if nstest.Terminate(d.cmd.Process, d.done, 5*time.Second) {
		return fmt.Errorf("did not exit within 5s of SIGTERM")
	}
	return d.err
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error { return d.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to go.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

// Exited reports whether the process has ended, and its exit error.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// Log returns everything the daemon has written so far.
func (d *Daemon) Log() string { return d.log.String() }

// Entry is one JSON log line.
type Entry map[string]any

// Str returns a field as a string ("" when absent); numbers and other
// values are formatted with %v.
func (e Entry) Str(key string) string {
	v, ok := e[key]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Match is a predicate on a log entry.
type Match func(Entry) bool

// Msg matches entries with msg == msg and every key=value pair in kv.
func Msg(msg string, kv ...string) Match {
	return func(e Entry) bool {
		if e.Str("msg") != msg {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if e.Str(kv[i]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// Entries returns the JSON log lines written so far that match m (every
// line when m is nil). Non-JSON lines are skipped.
func (d *Daemon) Entries(m Match) []Entry {
	var out []Entry
	for line := range strings.SplitSeq(d.Log(), "\n") {
		var e Entry
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if m == nil || m(e) {
			out = append(out, e)
		}
	}
	return out
}

// WaitLog waits up to timeout for a log line matching m, and returns it.
// It gives up early if the daemon exits.
func (d *Daemon) WaitLog(timeout time.Duration, m Match) (Entry, error) {
	deadline := time.Now().Add(timeout)
	for {
		if es := d.Entries(m); len(es) > 0 {
			return es[0], nil
		}
		if exited, err := d.Exited(); exited {
			if es := d.Entries(m); len(es) > 0 {
				return es[0], nil
			}
			return nil, fmt.Errorf("daemon exited (%v) without logging the expected line", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no matching log line within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CountLog returns how many lines match m so far; with WaitCount it lets a
// test wait for the next occurrence of an event that already happened.
func (d *Daemon) CountLog(m Match) int { return len(d.Entries(m)) }

// WaitCount waits up to timeout until more than n lines match m.
func (d *Daemon) WaitCount(timeout time.Duration, n int, m Match) error {
	if !Poll(timeout, func() bool { return d.CountLog(m) > n }) {
		return fmt.Errorf("no new matching log line within %s", timeout)
	}
	return nil
}

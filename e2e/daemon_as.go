package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/syncbuf"
	"github.com/sesame-knock/sesame/logevent"
)

// Unprivileged is the setpriv(1) prefix that runs a command as nobody
// (65534) with exactly CAP_NET_ADMIN and CAP_NET_RAW, as the systemd unit
// does: in the bounding, inheritable and ambient sets, nothing else.
var Unprivileged = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
	"--bounding-set=-all,+net_admin,+net_raw",
	"--inh-caps=-all,+net_admin,+net_raw",
	"--ambient-caps=-all,+net_admin,+net_raw",
	"--no-new-privs"}

// PublicCopy copies the binary under test and the config at path into a
// fresh world-readable directory, so that an unprivileged user can run
// them, and returns the new paths.
func PublicCopy(t testing.TB, path string) (bin, config string) {
	t.Helper()
	dir := PublicDir(t)
	cp := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	bin, config = filepath.Join(dir, "sesame"), filepath.Join(dir, "sesame.hcl")
	cp(SesameBin, bin, 0o755)
	cp(path, config, 0o644)
	waitExecutable(t, bin)
	return bin, config
}

// waitExecutable returns once bin can be executed. A child that another
// test forked while bin was open for writing holds the write descriptor
// until its own exec closes it (O_CLOEXEC), and until then executing bin
// fails with ETXTBSY ("text file busy"). No new writer can appear once the
// file is closed, so one successful run is enough.
func waitExecutable(t testing.TB, bin string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := exec.Command(bin, "version").Run()
		if !errors.Is(err, syscall.ETXTBSY) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stays busy (ETXTBSY) for 5s", bin)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PublicDir returns a new directory that every user can enter (t.TempDir's
// parent is private to root), removed when the test ends.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sesame-pub-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartDaemonWith is StartDaemonFile with the command line prefixed by wrap
// (e.g. Unprivileged), the binary bin (SesameBin when empty) and env added
// to the environment.
func StartDaemonWith(t testing.TB, ns *nstest.NS, path, bin string, wrap, env []string) *Daemon {
	t.Helper()
	if bin == "" {
		bin = SesameBin
	}
	d := &Daemon{NS: ns, Config: path, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	argv := append(append([]string{}, wrap...), bin, "run", "-c", path, "--log-format", "json", "--log-level", "debug")
	d.cmd = ns.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon log (pid %d, %s):\n%s", d.cmd.Process.Pid, ns.Name, d.log.String())
		}
	})
	if _, err := d.WaitLog(10*time.Second, Msg(logevent.Ready)); err != nil {
		t.Fatalf("daemon not ready: %v\nlog:\n%s", err, d.log.String())
	}
	return d
}

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// notifySocket listens where a Type=notify daemon sends its sd_notify
// states, as systemd does, and returns its path and the states received.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir := PublicDir(t)
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil { // the daemon runs as nobody
		t.Fatal(err)
	}
	states := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			states <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return path, states
}

// wantState waits up to 5s for a notify state that starts with prefix.
func wantState(t *testing.T, states <-chan string, prefix string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-states:
			if strings.HasPrefix(s, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no sd_notify %q within 5s", prefix)
		}
	}
}

// The daemon runs as nobody with only CAP_NET_ADMIN and CAP_NET_RAW (what
// deploy/sesame.service grants), tells systemd READY=1 once serving,
// RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM,
// and a knock opens the door.
func TestUnprivilegedNotify(t *testing.T) {
	t.Parallel()
	nstest.RequireRoot(t)
	tp := NewTopo(t)
	Listen(t, tp.Server, 22)
	bin, cfg := PublicCopy(t, WriteConfig(t, config("reject", sshDoor("30s", "5s"))))
	sock, states := notifySocket(t)
	d := StartDaemonWith(t, tp.Server, cfg, bin, Unprivileged, []string{"NOTIFY_SOCKET=" + sock})
	e := &env{Topo: tp, D: d}
	wantState(t, states, "READY=1")

	status, err := os.ReadFile("/proc/" + strconv.Itoa(d.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "CapEff:\t0000000000003000", "CapBnd:\t0000000000003000"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("daemon /proc status lacks %q:\n%s", want, status)
		}
	}

	mustRefuse(t, e.Client, ServerClient4, 22)
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)

	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wantState(t, states, "RELOADING=1")
	wantState(t, states, "READY=1")
	e.waitLog(t, Msg(logevent.Reloaded), "reloaded")
	if err := d.Stop(); err != nil {
		t.Errorf("SIGTERM: exit %v, want 0", err)
	}
	wantState(t, states, "STOPPING=1")
}

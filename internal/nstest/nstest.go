// Package nstest gives tests and the benchmark throwaway network namespaces,
// the topology they share (topo.go), and the rule for privileged tests: skip
// with a reason when not root or under -short, fail instead when
// SESAME_REQUIRE_ROOT=1 (CI sets it, so nothing privileged is silently
// skipped there).
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace that tests create, so a stray
// one is easy to find: ip netns list | grep sesame-t-
const Prefix = "sesame-t-"

// RequireRoot skips t unless it runs as root with ip and nft available, and
// under -short (`make unit`: only what needs neither root nor namespaces).
// With SESAME_REQUIRE_ROOT=1 in the environment it never skips: a missing
// privilege or tool fails the test, and -short runs it anyway.
func RequireRoot(t testing.TB) {
	t.Helper()
	var why string
	switch {
	case os.Geteuid() != 0:
		why = "needs root (network namespaces, nftables, raw sockets)"
	default:
		for _, tool := range []string{"ip", "nft"} {
			if _, err := exec.LookPath(tool); err != nil {
				why = "needs the " + tool + " command (apt-get install iproute2 nftables)"
			}
		}
	}
	required := os.Getenv("SESAME_REQUIRE_ROOT") == "1"
	if why == "" {
		if testing.Short() && !required {
			t.Skip("privileged (namespaces, nftables): skipped with -short")
		}
		return
	}
	if required {
		t.Fatalf("SESAME_REQUIRE_ROOT=1 but this test %s", why)
	}
	t.Skip(why)
}

// NS is a network namespace.
type NS struct {
	Name string
	fd   int
}

// New creates a namespace named Prefix+tag+random, with loopback up, and
// deletes it when the test ends, pass or fail. It calls RequireRoot first.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	RequireRoot(t)
	ns, err := Create(tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// Create is New for code that holds no testing.TB (the benchmark): the
// caller deletes the namespace with Close.
func Create(tag string) (*NS, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := Prefix + tag + "-" + hex.EncodeToString(b)
	if len(name) > 40 {
		name = name[:40]
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, out)
	}
	ns := &NS{Name: name, fd: -1}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	ns.fd = fd
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		_ = ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace and the links inside it.
func (ns *NS) Close() error {
	if ns.fd >= 0 {
		unix.Close(ns.fd)
		ns.fd = -1
	}
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", ns.Name, err, out)
	}
	return nil
}

// FD is an open file descriptor of the namespace, for
// nftables.WithNetNSFd or setns. It stays valid until Close.
func (ns *NS) FD() int { return ns.fd }

// Exec runs a command inside the namespace and returns its combined output;
// a failure fails the test.
func (ns *NS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Command is the command name args run inside the namespace (ip netns
// exec, which execs it: the process's pid is the command's own), for
// callers that feed it input or keep it running.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Terminate sends p SIGTERM and waits until done is closed (the
// process's Wait returned); after grace it sends SIGKILL and waits again.
// It reports whether it had to kill.
func Terminate(p *os.Process, done <-chan struct{}, grace time.Duration) (killed bool) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return false
	case <-time.After(grace):
		_ = p.Kill()
		<-done
		return true
	}
}

// Try runs a command inside the namespace and returns its combined output
// and the command's error as is.
func (ns *NS) Try(name string, args ...string) (string, error) {
	out, err := ns.Command(name, args...).CombinedOutput()
	return string(out), err
}

// Run is Try with an error that names the command and holds its output.
func (ns *NS) Run(name string, args ...string) (string, error) {
	out, err := ns.Try(name, args...)
	if err != nil {
		return out, fmt.Errorf("ip netns exec %s %s %s: %w: %s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Do runs f on an OS thread that has entered the namespace. Sockets keep
// the namespace they were created in, so a listener or a connection made in
// f stays there after f returns. The thread is never unlocked: when f's
// goroutine ends, the runtime discards the thread instead of reusing it in
// the wrong namespace.
func (ns *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

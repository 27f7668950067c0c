// Package nstest gives tests throwaway network namespaces and the rule for
// privileged tests: skip with a reason when not root, fail instead when
// SESAME_REQUIRE_ROOT=1 (CI sets it, so nothing privileged is silently
// skipped there).
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace that tests create, so a stray
// one is easy to find: ip netns list | grep sesame-t-
const Prefix = "sesame-t-"

// RequireRoot skips t unless it runs as root with ip and nft available. With
// SESAME_REQUIRE_ROOT=1 in the environment it fails instead of skipping.
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
	if why == "" {
		return
	}
	if os.Getenv("SESAME_REQUIRE_ROOT") == "1" {
		t.Fatalf("SESAME_REQUIRE_ROOT=1 but this test %s", why)
	}
	t.Skip(why)
}

// NS is a network namespace that lives as long as the test.
type NS struct {
	Name string
	fd   int
}

// New creates a namespace named Prefix+tag+random, with loopback up, and
// deletes it when the test ends, pass or fail.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	RequireRoot(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := Prefix + tag + "-" + hex.EncodeToString(b)
	if len(name) > 40 {
		name = name[:40]
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NS{Name: name, fd: -1}
	t.Cleanup(func() {
		if ns.fd >= 0 {
			unix.Close(ns.fd)
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	ns.fd = fd
	return ns
}

// FD is an open file descriptor of the namespace, for
// nftables.WithNetNSFd or setns. It stays valid until the test ends.
func (ns *NS) FD() int { return ns.fd }

// Exec runs a command inside the namespace and returns its combined output;
// a failure fails the test.
func (ns *NS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Try(name, args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s %s: %v: %s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside the namespace and returns its combined output
// and error.
func (ns *NS) Try(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

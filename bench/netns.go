// Package bench is the end-to-end benchmark behind `make bench`: in
// throwaway network namespaces it runs sesame and knockd on the same
// workloads (knock-to-grant latency, a spoofed SYN flood with a legitimate
// client knocking through it, a bulk transfer from a granted client),
// reads each daemon's CPU time, RSS and socket drops, and renders one table
// with sesame/knockd ratios plus two plots.
package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// netNS is a network namespace that the benchmark created and deletes.
type netNS struct {
	Name string
	fd   int
}

// newNS creates a namespace named nstest.Prefix+"b"+tag+random with
// loopback up.
func newNS(tag string) (*netNS, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := nstest.Prefix + "b" + tag + "-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, out)
	}
	ns := &netNS{Name: name, fd: -1}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		ns.Delete()
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	ns.fd = fd
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Delete removes the namespace (and the links inside it).
func (ns *netNS) Delete() {
	if ns.fd >= 0 {
		unix.Close(ns.fd)
		ns.fd = -1
	}
	_ = exec.Command("ip", "netns", "del", ns.Name).Run()
}

// Run runs a command inside the namespace and returns its combined output.
func (ns *netNS) Run(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s %s: %w: %s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Do runs f on an OS thread that has entered the namespace. The thread is
// never unlocked: the runtime discards it when f's goroutine ends, so no
// other goroutine runs in the wrong namespace. Sockets made in f stay in
// the namespace.
func (ns *netNS) Do(f func() error) error {
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

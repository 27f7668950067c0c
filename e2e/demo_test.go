package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// TestDemo runs the README's first command (make demo's script) and checks
// that it succeeds and leaves no namespace or process behind.
func TestDemo(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	root, listen := demoListen(t)
	cmd := exec.Command("bash", "e2e/demo.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SESAME_BIN="+SesameBin, "LISTEN_BIN="+listen)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo: OK") {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"refused, as it should be",
		"hitting udp 192.0.2.1:8000",
		"SSH-2.0-demo hello from the server namespace",
		"msg=open door=ssh src=192.0.2.2 ports=22/tcp for=6s confirm=6s",
		"msg=open door=ssh src=2001:db8:d::2 ports=22/tcp for=6s confirm=6s",
		"refused again: the grant expired in the kernel",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	ns, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ns), "sesame-demo-") {
		t.Errorf("the demo left namespaces behind:\n%s", ns)
	}
}

// demoListen returns the module's root and a fresh build of the demos'
// listener (e2e/demo-listen).
func demoListen(t *testing.T) (root, listen string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	listen = filepath.Join(t.TempDir(), "demo-listen")
	build := exec.Command("go", "build", "-o", listen, "./e2e/demo-listen")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build demo-listen: %v\n%s", err, out)
	}
	return root, listen
}

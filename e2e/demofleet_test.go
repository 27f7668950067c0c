package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// TestDemoFleet runs make demo-fleet's script and checks that one knock
// opened the three hosts, and that it leaves no namespace or process
// behind.
func TestDemoFleet(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	root, listen := demoListen(t)
	cmd := exec.Command("bash", "e2e/demo-fleet.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SESAME_BIN="+SesameBin, "LISTEN_BIN="+listen,
		"NATS_SERVER_BIN="+NatsServerBin(t), "NK_BIN="+NkBin(t))
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil || !strings.Contains(out, "demo-fleet: OK") {
		t.Fatalf("demo-fleet failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"msg=fleet-bucket-created bucket=sesame_prod_web replicas=3",
		"host 3: fleet prod, member web-2, groups [web]: connected to nats://",
		"SSH-2.0-demo hello from host 1 (bastion-1)",
		"SSH-2.0-demo hello from host 2 (web-1)",
		"SSH-2.0-demo hello from host 3 (web-2)",
		"msg=open door=ssh src=203.0.113.2 client=alice ports=22/tcp for=30s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo-fleet output lacks %q", want)
		}
	}
	// Hosts 2 and 3: the element names host 1's record, sesame status
	// the origin, and each logged the record as applied.
	for _, re := range []string{
		`(?m)^\s+elements = \{ 203\.0\.113\.2 \. tcp \. 22 timeout \S+ expires \S+ comment "ssh" \}$`,
		`(?m)^203\.0\.113\.2\s+22/tcp\s+ssh\s+open\s+\S+\s+local$`,
	} {
		if n := len(regexp.MustCompile(re).FindAllString(out, -1)); n != 1 {
			t.Errorf("demo-fleet output: %d lines match %s, want 1 (host 1's own grant)", n, re)
		}
	}
	for _, re := range []string{
		`(?m)^\s+elements = \{ 203\.0\.113\.2 \. tcp \. 22 timeout \S+ expires \S+ comment "fleet:ssh:bastion-1:[0-9a-f]{4}" \}$`,
		`(?m)^203\.0\.113\.2\s+22/tcp\s+ssh\s+open\s+\S+\s+fleet bastion-1 [0-9a-f]{4}$`,
		`(?m)msg=fleet-open door=ssh src=203\.0\.113\.2 ports=22/tcp for=\S+ origin=bastion-1 id=[0-9a-f]{32} group=web`,
		`(?m)^  applied 1 \(last`,
	} {
		if n := len(regexp.MustCompile(re).FindAllString(out, -1)); n != 2 {
			t.Errorf("demo-fleet output: %d lines match %s, want 2 (hosts 2 and 3)", n, re)
		}
	}
	ns, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ns), "sesame-fdemo-") {
		t.Errorf("the demo left namespaces behind:\n%s", ns)
	}
	if ps, _ := exec.Command("pgrep", "-f", "sesame-demo-fleet\\.").CombinedOutput(); len(ps) > 0 {
		t.Errorf("the demo left processes behind: %s", ps)
	}
}

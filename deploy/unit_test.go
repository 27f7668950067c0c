// Package deploy holds what a host needs besides the binary: the systemd
// unit, the packaged config and the nfpm recipe. Its tests check the unit
// with systemd-analyze and, as root, install the built .deb.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tool returns the path of a command the test needs; without it the test
// skips, or fails under SESAME_REQUIRE_ROOT=1 (CI, where e2e/deps.sh
// installs it).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	why := "needs " + name + " (apt-get install " + pkg + ")"
	if os.Getenv("SESAME_REQUIRE_ROOT") == "1" {
		t.Fatalf("SESAME_REQUIRE_ROOT=1 but this test %s", why)
	}
	t.Skip(why)
	return ""
}

// unitFor returns a copy of sesame.service whose commands run bin (verify
// insists that every ExecStart binary exists).
func unitFor(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile("sesame.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sesame.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/bin/sesame", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	sa := tool(t, "systemd-analyze", "systemd")
	bin, err := filepath.Abs("../bin/sesame")
	if env := os.Getenv("SESAME_BIN"); env != "" {
		bin = env
	}
	if _, serr := os.Stat(bin); err != nil || serr != nil {
		bin, _ = exec.LookPath("true") // any executable: verify only checks it exists
	}
	unit := unitFor(t, bin)
	if out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score systemd-analyze security gives the unit: 2.2
	// ("OK") when written; fail if a change takes it past 3.0.
	out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=30", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "Overall exposure") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// TestUnitDirectives checks what the unit promises: Type=notify, a reload
// that validates first, restart on failure, ordering after the network and
// the host's own firewall, and exactly two capabilities.
func TestUnitDirectives(t *testing.T) {
	b, err := os.ReadFile("sesame.service")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && !strings.HasPrefix(k, "#") {
			got[k] = append(got[k], v)
		}
	}
	want := map[string][]string{
		"Type":                    {"notify"},
		"ExecStart":               {"/usr/bin/sesame run -c /etc/sesame/sesame.hcl"},
		"ExecReload":              {"/usr/bin/sesame check -c /etc/sesame/sesame.hcl", "/bin/kill -HUP $MAINPID"},
		"Restart":                 {"on-failure"},
		"Wants":                   {"network-online.target"},
		"CapabilityBoundingSet":   {"CAP_NET_ADMIN CAP_NET_RAW"},
		"AmbientCapabilities":     {"CAP_NET_ADMIN CAP_NET_RAW"},
		"NoNewPrivileges":         {"yes"},
		"ProtectSystem":           {"strict"},
		"ProtectHome":             {"yes"},
		"PrivateTmp":              {"yes"},
		"RestrictAddressFamilies": {"AF_NETLINK AF_PACKET AF_UNIX AF_INET AF_INET6"},
		"MemoryDenyWriteExecute":  {"yes"},
	}
	// Not a DynamicUser: a dynamic uid could not read the 0600 secret and
	// key files that TOTP and SPA doors need.
	if u := got["DynamicUser"]; len(u) != 0 {
		t.Errorf("DynamicUser = %q: a dynamic uid cannot read the mode-0600 secret files sesame check requires", u)
	}
	for k, v := range want {
		if strings.Join(got[k], "\n") != strings.Join(v, "\n") {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if a := strings.Join(got["After"], " "); !strings.Contains(a, "network-online.target") || !strings.Contains(a, "nftables.service") {
		t.Errorf("After = %q, want network-online.target and nftables.service", a)
	}
	if f := got["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %q, want @system-service first", f)
	}
}

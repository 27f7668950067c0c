package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// packages returns the .deb and .rpm that `make package` built, building
// them if dist/ has none.
func packages(t *testing.T) (deb, rpm string) {
	t.Helper()
	find := func() {
		debs, _ := filepath.Glob("../dist/sesame_*_amd64.deb")
		rpms, _ := filepath.Glob("../dist/sesame-*.x86_64.rpm")
		if len(debs) == 1 && len(rpms) == 1 {
			deb, rpm = debs[0], rpms[0]
		}
	}
	if find(); deb == "" {
		if out, err := exec.Command("make", "-C", "..", "package").CombinedOutput(); err != nil {
			t.Fatalf("make package: %v\n%s", err, out)
		}
		if find(); deb == "" {
			t.Fatal("make package made no single .deb and .rpm in dist/")
		}
	}
	return deb, rpm
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The files the packages install.
var installed = []string{
	"/usr/bin/sesame",
	"/usr/lib/systemd/system/sesame.service",
	"/etc/sesame/sesame.hcl",
	"/usr/share/man/man8/sesame.8.gz",
	"/usr/share/man/man5/sesame.hcl.5.gz",
}

// The .deb installs with dpkg, its config checks, its unit verifies against
// the installed binary, the service is not enabled, an edited config
// survives a reinstall, and dpkg --purge leaves nothing behind.
func TestDebInstalls(t *testing.T) {
	nstest.RequireRoot(t)
	tool(t, "dpkg", "dpkg")
	sa := tool(t, "systemd-analyze", "systemd")
	deb, _ := packages(t)
	if out, err := exec.Command("dpkg-query", "-W", "sesame").CombinedOutput(); err == nil {
		t.Fatalf("a sesame package is installed already (%s): this test installs and purges its own; remove it first", strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat("/usr/bin/sesame"); err == nil {
		t.Fatal("/usr/bin/sesame exists and is not from a package: this test would overwrite it")
	}
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "sesame").Run() })
	run(t, "dpkg", "-i", deb)

	for _, f := range installed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -i: %v", err)
		}
	}
	if out := run(t, "/usr/bin/sesame", "version"); !strings.HasPrefix(out, "sesame ") {
		t.Errorf("sesame version = %q", out)
	}
	// The shipped config guards nothing: check passes, with a warning.
	out, err := exec.Command("/usr/bin/sesame", "check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "doors:      0") {
		t.Errorf("sesame check on the installed config: %v\n%s\nwant ok with no door", err, out)
	}
	if out, err := exec.Command(sa, "verify", "--man=no", "/usr/lib/systemd/system/sesame.service").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob("/etc/systemd/system/*.wants/sesame.service"); len(m) > 0 {
		t.Errorf("the package enabled the service: %v", m)
	}
	if cf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "sesame"); !strings.Contains(cf, "/etc/sesame/sesame.hcl") {
		t.Errorf("conffiles = %q, want /etc/sesame/sesame.hcl", cf)
	}

	// An admin's edit survives a reinstall (an upgrade keeps it too: conffile).
	f, err := os.OpenFile("/etc/sesame/sesame.hcl", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# edited by the admin\n")
	f.Close()
	run(t, "dpkg", "-i", "--force-confold", deb)
	if b, _ := os.ReadFile("/etc/sesame/sesame.hcl"); !strings.Contains(string(b), "# edited by the admin") {
		t.Errorf("reinstall replaced the edited config")
	}

	run(t, "dpkg", "--purge", "sesame")
	for _, f := range append(installed, "/etc/sesame") {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("after dpkg --purge: %s is still there", f)
		}
	}
}

// The .rpm lists the same files, its config marked %config(noreplace).
func TestRpmContents(t *testing.T) {
	rpmBin := tool(t, "rpm", "rpm")
	_, rpm := packages(t)
	list := run(t, rpmBin, "-qlp", rpm)
	for _, f := range installed {
		if !strings.Contains(list, f+"\n") {
			t.Errorf("rpm -qlp lacks %s:\n%s", f, list)
		}
	}
	// FILEFLAGS: RPMFILE_CONFIG (1) | RPMFILE_NOREPLACE (16).
	flags := run(t, rpmBin, "-qp", "--qf", "[%{FILEFLAGS} %{FILENAMES}\n]", rpm)
	if !strings.Contains(flags, "17 /etc/sesame/sesame.hcl\n") {
		t.Errorf("rpm file flags:\n%s\nwant 17 (config, noreplace) on /etc/sesame/sesame.hcl", flags)
	}
	name := filepath.Base(rpm)
	ver := run(t, rpmBin, "-qp", "--qf", "%{VERSION}", rpm)
	if name != "sesame-"+ver+".x86_64.rpm" {
		t.Errorf("rpm %s has version %q", name, ver)
	}
}

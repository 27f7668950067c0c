package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// tcpDoor is a 3-step all-TCP door: every client below can knock on it.
const tcpDoor = `door "ssh" {
  sequence    = ["7000/tcp", "8000/tcp", "9000/tcp"]
  seq_timeout = "10s"
  open        = ["22/tcp"]
  open_for    = "30s"
}
`

// TestInteropClients: the clients knockd users already have open a
// 3-step door. Several send more than one packet per port (nmap's probes,
// curl's and nc's retransmits); the matcher's repeat rule copes.
// nmap runs with -n: without a resolver in the namespace, its reverse DNS
// lookup takes ~13s a run, longer than the door's seq_timeout.
func TestInteropClients(t *testing.T) {
	t.Parallel()
	host := ServerClient4.String()
	clients := []struct {
		name string
		bin  string
		hit  func(port string) []string // argv of one hit
	}{
		{"knockd-knock", "knock", nil}, // one run with all ports, below
		{"nc-z", "nc", func(p string) []string { return []string{"nc", "-z", "-w", "1", host, p} }},
		{"nmap", "nmap", func(p string) []string { return []string{"nmap", "-n", "-Pn", "--max-retries", "0", "-p", p, host} }},
		{"hping3", "hping3", func(p string) []string { return []string{"hping3", "-S", "-c", "1", "-p", p, host} }},
		{"curl", "curl", func(p string) []string {
			return []string{"curl", "-s", "--max-time", "1", "http://" + host + ":" + p + "/"}
		}},
		{"bash-dev-tcp", "bash", func(p string) []string {
			return []string{"timeout", "1", "bash", "-c", "echo > /dev/tcp/" + host + "/" + p}
		}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(c.bin); err != nil {
				t.Fatalf("%s is not installed (e2e/deps.sh installs it): %v", c.bin, err)
			}
			e := setup(t, config("drop", tcpDoor))
			mustTimeOut(t, e.Client, ServerClient4, 22)
			if c.hit == nil {
				e.Client.Exec(t, "knock", "-v", host, "7000", "8000", "9000")
			} else {
				for _, p := range []string{"7000", "8000", "9000"} {
					argv := c.hit(p)
					// Exit status is the client's view of a closed port
					// (refused, timed out): only the packets matter.
					out, _ := e.Client.Try(argv[0], argv[1:]...)
					t.Logf("%s: %s", strings.Join(argv, " "), strings.TrimSpace(out))
				}
			}
			e.waitGrant(t, Client4, 22)
			mustConnect(t, e.Client, ServerClient4, 22)
			if n := e.D.CountLog(Msg(logevent.Reset)); n != 0 {
				t.Errorf("%d resets while knocking with %s:\n%s", n, c.name, e.D.Log())
			}
		})
	}
}

// TestKnockWait: --wait reports access (exit 0) after a right knock and
// none (exit 1) after a wrong one.
func TestKnockWait(t *testing.T) {
	t.Parallel()
	e := setup(t, config("drop", tcpDoor))
	host := ServerClient4.String()
	if out, err := KnockTry(e.Client, "--wait", "22", "--wait-for", "1s", host, "7000", "9000", "8000"); exitCode(err) != 1 {
		t.Errorf("wrong knock with --wait: %v, want exit 1: %s", err, out)
	}
	out, err := KnockTry(e.Client, "--wait", "22", host, "7000", "8000", "9000")
	if err != nil || !strings.Contains(out, "access granted: tcp 192.0.2.1:22 is open") {
		t.Errorf("right knock with --wait: %v: %s", err, out)
	}
}

// TestHooks: on_open and on_close run, in the server's namespace, with
// their placeholders expanded; a hanging on_open does not delay the grant.
func TestHooks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opened, closed := filepath.Join(dir, "opened"), filepath.Join(dir, "closed")
	cfg := config("drop", fmt.Sprintf(`door "ssh" {
  sequence       = ["7000/tcp", "8000/udp", "9000/tcp"]
  open           = ["22/tcp"]
  close_sequence = ["9000/tcp", "8000/udp", "7000/tcp"]
  on_open        = ["/bin/sh", "-c", "echo $0 $1 $2 > %s; sleep 30", "{ip}", "{door}", "{ports}"]
  on_close       = ["/bin/sh", "-c", "echo $0 > %s", "{ip}"]
  hook_timeout   = "1s"
}
`, opened, closed))
	e := setup(t, cfg)
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	if !Poll(5*time.Second, func() bool { b, _ := os.ReadFile(opened); return string(b) == "192.0.2.2 ssh 22/tcp\n" }) {
		b, _ := os.ReadFile(opened)
		t.Errorf("on_open wrote %q, want %q", b, "192.0.2.2 ssh 22/tcp\n")
	}
	e.waitLog(t, Msg(logevent.HookTimeout, "door", "ssh", "src", Client4.String()), "the hanging on_open being killed")
	knock(t, e.Client, ServerClient4, closeSSH...)
	e.waitGone(t, Client4, 22, 5*time.Second)
	if !Poll(5*time.Second, func() bool { b, _ := os.ReadFile(closed); return string(b) == "192.0.2.2\n" }) {
		b, _ := os.ReadFile(closed)
		t.Errorf("on_close wrote %q", b)
	}
}

// TestConvertChecks: `sesame convert` output of knockd's Debian default
// and man page configs passes `sesame check`.
func TestConvertChecks(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../migrate/knockd/testdata/*.conf")
	if len(files) == 0 {
		t.Fatal("no migrate/knockd testdata")
	}
	// One_Time_Sequences names a file on the knockd host: give each config
	// a real one, in knockd's format, so that sesame check can read it.
	oneTime := regexp.MustCompile(`(?im)^(\s*one_time_sequences\s*=\s*)\S+`)
	for _, orig := range files {
		src, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		seqs := filepath.Join(dir, "sequences")
		if err := os.WriteFile(seqs, []byte("# used by TestConvertChecks\n4001,4002:udp,4003\n5001 5002 5003\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, filepath.Base(orig))
		if err := os.WriteFile(f, oneTime.ReplaceAll(src, []byte("${1}"+seqs)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(SesameBin, "convert", f).Output()
		if code := exitCode(err); code != 0 && code != 2 {
			t.Errorf("sesame convert %s: %v", f, err)
			continue
		}
		hcl := filepath.Join(t.TempDir(), "sesame.hcl")
		if err := os.WriteFile(hcl, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(SesameBin, "check", "-c", hcl).CombinedOutput(); err != nil {
			t.Errorf("sesame check on the conversion of %s: %v\n%s\n%s", f, err, msg, out)
		}
	}
}

package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// spaKeys runs `sesame keygen --spa -o DIR/NAME.spa` and returns the path
// and the two base64 keys, as the fwknop client takes them.
func spaKeys(t *testing.T, dir, name string) (path, key, hmacKey string) {
	t.Helper()
	path = filepath.Join(dir, name+".spa")
	out, err := exec.Command(SesameBin, "keygen", "--spa", "-o", path, "--server", ServerClient4.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("sesame keygen --spa: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "[sesame]") || !strings.Contains(string(out), "SPA_SERVER          "+ServerClient4.String()) {
		t.Errorf("keygen --spa printed no ~/.fwknoprc stanza:\n%s", out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keygen --spa wrote %s: %v, mode %v; want mode 0600", path, err, st.Mode())
	}
	b, _ := os.ReadFile(path)
	key = regexp.MustCompile(`(?m)^KEY_BASE64: (\S+)$`).FindStringSubmatch(string(b))[1]
	hmacKey = regexp.MustCompile(`(?m)^HMAC_KEY_BASE64: (\S+)$`).FindStringSubmatch(string(b))[1]
	return path, key, hmacKey
}

// spaSetup starts a daemon with an SPA door "spa" (port 62201, opens 22 and
// 2222/tcp for 30s, max_open_for 5m) for client alice, its replay cache in
// a temporary state_dir.
func spaSetup(t *testing.T) (e *env, keyFile, key, hmacKey string) {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("fwknop"); err != nil {
		t.Fatal("the fwknop client is missing: e2e/deps.sh installs fwknop-client")
	}
	dir := t.TempDir()
	keyFile, key, hmacKey = spaKeys(t, dir, "alice")
	door := fmt.Sprintf(`state_dir = %q
door "spa" {
  spa { port = 62201 }
  client "alice" { key_file = %q }
  open         = ["22/tcp", "2222/tcp"]
  open_for     = "30s"
  max_open_for = "5m"
}
`, filepath.Join(dir, "state"), keyFile)
	return setup(t, config("reject", door)), keyFile, key, hmacKey
}

// fwknop runs the real fwknop client in ns with a clean HOME and no rc
// file, as SPA.md describes, plus extra arguments.
func fwknop(t *testing.T, ns *nstest.NS, server netip.Addr, key, hmacKey string, extra ...string) string {
	t.Helper()
	args := append([]string{"env", "HOME=" + t.TempDir(), "fwknop", "--no-rc-file", "--no-save-args",
		"-D", server.String(), "-U", "alice", "--key-base64-rijndael", key, "--key-base64-hmac", hmacKey}, extra...)
	out, err := ns.Try(args[0], args[1:]...)
	if err != nil {
		t.Fatalf("fwknop %v: %v: %s", extra, err, out)
	}
	return out
}

// sendUDP sends payload from ns to to:port in one datagram.
func sendUDP(t *testing.T, ns *nstest.NS, to netip.Addr, port uint16, payload []byte) {
	t.Helper()
	err := ns.Do(func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, port)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
	if err != nil {
		t.Fatalf("send udp from %s: %v", ns.Name, err)
	}
}

// The real fwknop client opens the door with keys from sesame keygen
// --spa; a packet it saved (-T -B) opens once for its owner, and the same
// bytes re-sent from another namespace, or after a daemon restart, open
// nothing; a wrong key opens nothing; -f 60 yields a 60 s grant.
func TestSPAFwknopClient(t *testing.T) {
	t.Parallel()
	e, _, key, hmacKey := spaSetup(t)

	fwknop(t, e.Client, ServerClient4, key, hmacKey, "-A", "tcp/22", "-a", Client4.String())
	el := e.waitGrant(t, Client4, 22)
	if el.Comment != "spa" || el.Timeout != 30*time.Second {
		t.Errorf("grant %v; want comment \"spa\", timeout 30s", el)
	}
	e.waitLog(t, Msg(logevent.Open, "door", "spa", "src", Client4.String(), "client", "alice", "ports", "22/tcp"), "open with client=alice")
	mustConnect(t, e.Client, ServerClient4, 22)
	if _, found := Find(e.grants(t, Client4), Client4, "tcp", 2222); found {
		t.Error("2222/tcp granted; the packet asked for 22/tcp only")
	}

	// A saved packet: sent by its owner, then replayed by the stranger.
	saved := filepath.Join(t.TempDir(), "spa.pkt")
	fwknop(t, e.Client, ServerClient4, key, hmacKey, "-A", "tcp/2222", "-a", Client4.String(), "-T", "-B", saved)
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	wire := []byte(strings.TrimSpace(string(b)))
	sendUDP(t, e.Client, ServerClient4, 62201, wire)
	e.waitGrant(t, Client4, 2222)
	sendUDP(t, e.Stranger, ServerStranger4, 62201, wire)
	e.waitLog(t, Msg(logevent.SPARefused, "door", "spa", "src", Stranger4.String(), "client", "alice", "reason", "replay"), "the replay refused")

	// A wrong key.
	_, wrongKey, wrongHMAC := spaKeys(t, t.TempDir(), "mallory")
	fwknop(t, e.Stranger, ServerStranger4, wrongKey, wrongHMAC, "-A", "tcp/22", "-a", Stranger4.String())
	e.waitLog(t, Msg(logevent.SPARefused, "door", "spa", "src", Stranger4.String(), "reason", "bad-hmac"), "the wrong key refused")
	// A port the door does not open.
	fwknop(t, e.Stranger, ServerStranger4, key, hmacKey, "-A", "tcp/23", "-a", Stranger4.String())
	e.waitLog(t, Msg(logevent.SPARefused, "door", "spa", "src", Stranger4.String(), "reason", "ports-not-allowed"), "the port outside open refused")
	e.noGrant(t, Stranger4)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)

	// -f 60: a client timeout, within max_open_for.
	fwknop(t, e.Stranger, ServerStranger4, key, hmacKey, "-A", "tcp/22", "-a", Stranger4.String(), "-f", "60")
	el = e.waitGrant(t, Stranger4, 22)
	if el.Timeout != 60*time.Second {
		t.Errorf("grant %v; want timeout 60s", el)
	}

	// A restart keeps the replay cache: the saved packet is still refused.
	cfg := e.D.Config
	if err := e.D.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	e.D = StartDaemonFile(t, e.Server, cfg)
	sendUDP(t, e.Stranger, ServerStranger4, 62201, wire)
	e.waitLog(t, Msg(logevent.SPARefused, "door", "spa", "src", Stranger4.String(), "reason", "replay"), "the replay refused after a restart")
	if _, found := Find(e.grants(t, Stranger4), Stranger4, "tcp", 2222); found {
		t.Error("the replayed packet opened 2222/tcp for the stranger after a restart")
	}
}

// sesame knock --spa opens over IPv6 (the message carries the IPv6
// address: sesame's extension) and over IPv4; an embedded address other
// than the source is refused (allow_other_ip is off).
func TestSPAKnockIPv6(t *testing.T) {
	t.Parallel()
	e, keyFile, _, _ := spaSetup(t)
	if out, err := e.Client.Try(SesameBin, "knock", "--spa", keyFile, "-A", "tcp/22", "-v", ServerClient6.String()); err != nil {
		t.Fatalf("sesame knock --spa: %v: %s", err, out)
	}
	el := e.waitGrant(t, Client6, 22)
	if el.Comment != "spa" {
		t.Errorf("grant %v; want comment spa", el)
	}
	mustConnect(t, e.Client, ServerClient6, 22)

	if out, err := e.Stranger.Try(SesameBin, "knock", "--spa", keyFile, "-A", "tcp/22", "-a", Client4.String(), ServerStranger4.String()); err != nil {
		t.Fatalf("sesame knock --spa -a: %v: %s", err, out)
	}
	e.waitLog(t, Msg(logevent.SPARefused, "door", "spa", "src", Stranger4.String(), "reason", "other-ip"), "the other address refused")
	if out, err := e.Stranger.Try(SesameBin, "knock", "--spa", keyFile, "-A", "tcp/2222", "-f", "90", "-s", ServerStranger4.String()); err != nil {
		t.Fatalf("sesame knock --spa -s: %v: %s", err, out)
	}
	if el := e.waitGrant(t, Stranger4, 2222); el.Timeout != 90*time.Second {
		t.Errorf("grant %v; want timeout 90s", el)
	}
}

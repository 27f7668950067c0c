package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// keygen runs `sesame keygen -o DIR/NAME.key` and returns the path.
func keygen(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name+".key")
	if out, err := exec.Command(SesameBin, "keygen", "-o", path).CombinedOutput(); err != nil {
		t.Fatalf("sesame keygen: %v: %s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keygen wrote %s: %v, mode %v; want mode 0600", path, err, st.Mode())
	}
	return path
}

// totpSetup starts a daemon with a TOTP door "vault" (the default totp
// settings, open 2222/tcp) for clients alice and bob.
func totpSetup(t *testing.T) (e *env, alice, bob string) {
	t.Helper()
	nstest.RequireRoot(t)
	dir := t.TempDir()
	alice, bob = keygen(t, dir, "alice"), keygen(t, dir, "bob")
	door := fmt.Sprintf(`state_dir = %q

door "vault" {
  totp {
    port_range = "20000-29999"
    length     = 4
    step       = "30s"
    skew       = 1
    protocol   = "tcp"
  }
  client "alice" { secret_file = %q }
  client "bob"   { secret_file = %q }
  open     = ["2222/tcp"]
  open_for = "30s"
}
`, filepath.Join(dir, "state"), alice, bob)
	return setup(t, config("reject", door)), alice, bob
}

var hitRE = regexp.MustCompile(`hitting tcp \S+:(\d+)`)

// totpKnock runs sesame knock -v --totp from ns and returns the ports hit.
func totpKnock(t *testing.T, ns *nstest.NS, host fmt.Stringer, secret string, extra ...string) []string {
	t.Helper()
	out, err := ns.Try(SesameBin, append(append([]string{"knock", "-v"}, extra...), "--totp", secret, host.String())...)
	if err != nil {
		t.Errorf("sesame knock --totp: %v: %s", err, out)
		return nil
	}
	var ports []string
	for _, m := range hitRE.FindAllStringSubmatch(out, -1) {
		ports = append(ports, m[1])
	}
	if len(ports) != 4 {
		t.Errorf("sesame knock --totp printed %q; want 4 hits", out)
	}
	return ports
}

// A TOTP knock opens, the log names the client; the same packets replayed
// from another namespace (same ports, same step) open nothing.
func TestTOTPOpensReplayFails(t *testing.T) {
	t.Parallel()
	e, alice, _ := totpSetup(t)
	ports := totpKnock(t, e.Client, ServerClient4, alice)
	if t.Failed() {
		t.FailNow()
	}
	e.waitGrant(t, Client4, 2222)
	e.waitLog(t, Msg(logevent.Open, "door", "vault", "src", Client4.String(), "client", "alice"), "open with client=alice")
	mustConnect(t, e.Client, ServerClient4, 2222)

	knock(t, e.Stranger, ServerStranger4, ports...)
	e.waitLog(t, Msg(logevent.Reset, "door", "vault", "src", Stranger4.String(), "reason", "replayed", "client", "alice"), "the replay refused")
	e.noGrant(t, Stranger4)
	mustRefuse(t, e.Stranger, ServerStranger4, 2222)
	// The owner cannot reuse it either.
	knock(t, e.Client, ServerClient6, ports...)
	e.waitLog(t, Msg(logevent.Reset, "door", "vault", "src", Client6.String(), "reason", "replayed"), "the owner's reuse refused")
	e.noGrant(t, Client6)
}

// A sequence for a step outside the skew, or from a secret the server does
// not know, opens nothing; bob's current sequence then does (which also
// proves the daemon had handled the earlier knocks).
func TestTOTPSkewAndWrongSecret(t *testing.T) {
	t.Parallel()
	e, alice, bob := totpSetup(t)
	now := time.Now().Unix()
	for _, at := range []int64{now - 120, now + 120} {
		totpKnock(t, e.Stranger, ServerStranger4, alice, "--at", strconv.FormatInt(at, 10))
	}
	wrong := keygen(t, t.TempDir(), "mallory")
	totpKnock(t, e.Stranger, ServerStranger4, wrong)
	totpKnock(t, e.Stranger, ServerStranger4, bob)
	e.waitGrant(t, Stranger4, 2222)
	opens := e.D.Entries(Msg(logevent.Open, "door", "vault", "src", Stranger4.String()))
	if len(opens) != 1 || opens[0].Str("client") != "bob" {
		t.Errorf("open lines for the stranger: %v; want exactly one, client=bob", opens)
	}
	// A step within the skew works: alice one step late.
	totpKnock(t, e.Client, ServerClient4, alice, "--at", strconv.FormatInt(time.Now().Unix()-30, 10))
	e.waitGrant(t, Client4, 2222)
}

// Two clients knocking at the same time both get in.
func TestTOTPTwoClients(t *testing.T) {
	t.Parallel()
	e, alice, bob := totpSetup(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); totpKnock(t, e.Client, ServerClient4, alice) }()
	go func() { defer wg.Done(); totpKnock(t, e.Stranger, ServerStranger4, bob) }()
	wg.Wait()
	e.waitGrant(t, Client4, 2222)
	e.waitGrant(t, Stranger4, 2222)
	e.waitLog(t, Msg(logevent.Open, "door", "vault", "src", Client4.String(), "client", "alice"), "alice's open")
	e.waitLog(t, Msg(logevent.Open, "door", "vault", "src", Stranger4.String(), "client", "bob"), "bob's open")
}

// A burned sequence stays burned across kill -9 and a restart: the daemon
// keeps its burns in state_dir, written before the grant.
func TestTOTPBurnSurvivesRestart(t *testing.T) {
	t.Parallel()
	e, alice, _ := totpSetup(t)
	ports := totpKnock(t, e.Client, ServerClient4, alice)
	if t.Failed() {
		t.FailNow()
	}
	e.waitGrant(t, Client4, 2222)
	e.D.Kill()

	d2 := StartDaemonFile(t, e.Server, e.D.Config)
	knock(t, e.Stranger, ServerStranger4, ports...)
	if _, err := d2.WaitLog(5*time.Second, Msg(logevent.Reset, "door", "vault", "src", Stranger4.String(), "reason", "replayed", "client", "alice")); err != nil {
		t.Fatalf("the replay after a restart was not refused as a replay: %v\n%s", err, d2.Log())
	}
	e.noGrant(t, Stranger4)
	mustRefuse(t, e.Stranger, ServerStranger4, 2222)
}

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// sesame grant opens a door for an address by hand, status shows the doors
// and the grant with its time left, revoke closes it again, and down
// removes the table (only with --yes).
func TestAdminVerbs(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	cfg := e.D.Config
	mustRefuse(t, e.Client, ServerClient4, 22)

	out := e.Server.Exec(t, SesameBin, "grant", "-c", cfg, "--for", "90s", "ssh", Client4.String())
	if !strings.Contains(out, "granted "+Client4.String()) {
		t.Errorf("grant said %q", out)
	}
	el := e.waitGrant(t, Client4, 22)
	if el.Comment != "ssh" || el.Timeout != 90e9 {
		t.Errorf("grant element %v: want comment ssh, timeout 90s", el)
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	mustRefuse(t, e.Stranger, ServerStranger4, 22)

	js := e.Server.Exec(t, SesameBin, "status", "-c", cfg, "--json")
	var st struct {
		Table string `json:"table"`
		Doors []struct {
			Name string `json:"name"`
			Open string `json:"open"`
		} `json:"doors"`
		Grants []struct {
			Addr      string  `json:"addr"`
			Door      string  `json:"door"`
			ExpiresIn float64 `json:"expires_in_s"`
		} `json:"grants"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, js)
	}
	if st.Table != "sesame" || len(st.Doors) != 1 || st.Doors[0].Name != "ssh" || st.Doors[0].Open != "22/tcp" ||
		len(st.Grants) != 1 || st.Grants[0].Addr != Client4.String() || st.Grants[0].ExpiresIn <= 60 || st.Grants[0].ExpiresIn > 90 {
		t.Errorf("status --json = %+v: want table sesame, door ssh opening 22/tcp, one grant for %s with 60-90s left", st, Client4)
	}
	if text := e.Server.Exec(t, SesameBin, "status", "-c", cfg); !strings.Contains(text, "ssh") || !strings.Contains(text, Client4.String()) {
		t.Errorf("status:\n%s\nwant the door and the grant", text)
	}

	for _, bad := range [][]string{{"ssh", "192.0.2.0/24"}, {"nosuch", Client4.String()}, {"ssh", "not-an-ip"}, {"ssh"}} {
		out, err := e.Server.Try(SesameBin, append([]string{"grant", "-c", cfg}, bad...)...)
		if exitCode(err) != 2 || !strings.Contains(out, "sesame grant:") {
			t.Errorf("grant %v: exit %d, %q; want exit 2 and an explanation", bad, exitCode(err), out)
		}
	}

	e.Server.Exec(t, SesameBin, "revoke", "-c", cfg, "ssh", Client4.String())
	e.waitGone(t, Client4, 22, 0)
	mustRefuse(t, e.Client, ServerClient4, 22)

	out, err := e.Server.Try(SesameBin, "down", "-c", cfg)
	if exitCode(err) != 2 || !strings.Contains(out, "--yes") {
		t.Errorf("down without --yes: exit %d, %q; want exit 2 and a pointer to --yes", exitCode(err), out)
	}
	e.Server.Exec(t, "nft", "list", "table", "inet", "sesame") // still there
	if err := e.D.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	e.Server.Exec(t, SesameBin, "down", "-c", cfg, "--yes")
	if out, err := e.Server.Try("nft", "list", "table", "inet", "sesame"); err == nil {
		t.Errorf("table still there after down --yes:\n%s", out)
	}
	mustConnect(t, e.Client, ServerClient4, 22) // nothing guards the port any more
	if out := e.Server.Exec(t, SesameBin, "down", "-c", cfg, "--yes"); !strings.Contains(out, "nothing to remove") {
		t.Errorf("second down: %q, want nothing to remove", out)
	}
}

package policy

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

// TestFleetReference parses testdata/fleet.hcl: a fleet block with every
// attribute, and fleet_groups on a door of every kind.
func TestFleetReference(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/fleet.hcl")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte(`state_dir = "/var/lib/sesame"`), []byte(`state_dir = "`+t.TempDir()+`"`), 1)
	p, diags := Parse("testdata/fleet.hcl", src)
	if !onlyStaticFleetWarning(diags) {
		t.Fatalf("want only the static door's warning, got:\n%s", diags.Error())
	}
	want := &Fleet{
		Name:        "prod",
		Member:      "bastion-1",
		KeyFile:     "testdata/fleet/bastion-1.key", // relative to the config's directory
		MembersFile: "/etc/sesame/fleet/members.hcl",
		Groups:      []string{"web", "db"},
		Servers:     []string{"nats://192.0.2.10:4222", "tls://[2001:db8::11]:4222"},
		Creds:       "/etc/sesame/fleet/bastion-1.creds",
		CA:          "/etc/sesame/fleet/ca.pem",
		MaxSkew:     3 * time.Second,
	}
	if diff := cmp.Diff(want, p.Fleet, cmpopts.IgnoreFields(Fleet{}, "Range", "At")); diff != "" {
		t.Errorf("Fleet mismatch (-want +got):\n%s", diff)
	}
	if got := pos(p.Fleet.Range); got != "testdata/fleet.hcl:4,1" {
		t.Errorf("Fleet.Range at %s, want testdata/fleet.hcl:4,1", got)
	}
	if got := pos(p.Fleet.At.Member); got != "testdata/fleet.hcl:6,13" {
		t.Errorf("At.Member at %s, want testdata/fleet.hcl:6,13", got)
	}
	if got := pos(p.Fleet.At.Groups[1]); got != "testdata/fleet.hcl:9,21" {
		t.Errorf("At.Groups[1] at %s, want testdata/fleet.hcl:9,21", got)
	}
	groups := map[string][]string{}
	kinds := map[Kind]bool{}
	for _, d := range p.Doors {
		if d.FleetGroups != nil {
			groups[d.Name] = d.FleetGroups
			kinds[d.Kind()] = true
		}
		if got := len(p.Fleet.At.Doors[d.Name]); got != len(d.FleetGroups) {
			t.Errorf("door %s: %d ranges for %d fleet_groups", d.Name, got, len(d.FleetGroups))
		}
	}
	wantGroups := map[string][]string{"ssh": {"web", "db"}, "vault": {"db"}, "once": {"web"}, "spa": {"web"}}
	if diff := cmp.Diff(wantGroups, groups); diff != "" {
		t.Errorf("fleet_groups mismatch (-want +got):\n%s", diff)
	}
	if len(kinds) != 4 {
		t.Errorf("fleet_groups on %d kinds of door, want all 4", len(kinds))
	}
	if got := pos(p.Fleet.At.Doors["ssh"][1]); got != "testdata/fleet.hcl:21,26" {
		t.Errorf("At.Doors[ssh][1] at %s, want testdata/fleet.hcl:21,26", got)
	}
	checkInvariants(t, p)

	sum := p.Summary()
	for _, line := range []string{
		"fleet:      prod, member bastion-1, groups web,db, servers nats://192.0.2.10:4222,tls://[2001:db8::11]:4222, max skew 3s\n",
		"  ssh: publishes to web,db\n",
		"  vault: publishes to db\n",
		"  spa: publishes to web\n",
	} {
		if !strings.Contains(sum, line) {
			t.Errorf("Summary() has no line %q:\n%s", line, sum)
		}
	}
	if strings.Contains(sum, "local: publishes") {
		t.Errorf("Summary() lists a door without fleet_groups:\n%s", sum)
	}
}

// fleetBase is a valid fleet config; the tests replace one line of it.
const fleetBase = `fleet {
  name    = "prod"
  member  = "bastion-1"
  key     = "/k"
  members = "/m"
  groups  = ["web", "db"]
  nats {
    servers = ["nats://192.0.2.10:4222"]
  }
}
door "ssh" {
  sequence     = ["7000/tcp", "8000/udp", "9000/tcp"]
  open         = ["22/tcp"]
  fleet_groups = ["web"]
  confirm      = false
}
`

func TestFleetDefaults(t *testing.T) {
	t.Parallel()
	p, diags := Parse("f.hcl", []byte(fleetBase))
	if !onlyStaticFleetWarning(diags) {
		t.Fatalf("want only the static door's warning, got:\n%s", diags.Error())
	}
	if p.Fleet.MaxSkew != DefaultMaxSkew || p.Fleet.Creds != "" || p.Fleet.CA != "" {
		t.Errorf("defaults: max skew %s, creds %q, ca %q; want 2s and none", p.Fleet.MaxSkew, p.Fleet.Creds, p.Fleet.CA)
	}
	if sum := p.Summary(); !strings.Contains(sum, "max skew 2s\n") {
		t.Errorf("Summary():\n%s", sum)
	}
	// Without fleet_groups the host only applies: the summary says so.
	p, _ = Parse("f.hcl", []byte(strings.Replace(fleetBase, `  fleet_groups = ["web"]`+"\n", "", 1)))
	if sum := p.Summary(); !strings.Contains(sum, "no door publishes") {
		t.Errorf("Summary():\n%s", sum)
	}
}

// TestFleetErrors: every mistake in a fleet block or a door's fleet_groups
// is an error at its exact position.
func TestFleetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string // replace old by new in fleetBase
		want     string // the first error, up to its detail
	}{
		{"no name", `  name    = "prod"` + "\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no fleet;`},
		{"no member", `  member  = "bastion-1"` + "\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no member;`},
		{"no key", `  key     = "/k"` + "\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no key;`},
		{"no members", `  members = "/m"` + "\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no members;`},
		{"no groups", `  groups  = ["web", "db"]` + "\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no groups;`},
		{"no nats", "  nats {\n    servers = [\"nats://192.0.2.10:4222\"]\n  }\n", "", `f.hcl:1,1-6: Missing required argument; The fleet block has no nats block;`},
		{"no servers", `    servers = ["nats://192.0.2.10:4222"]`, `    creds = "/c"`, `f.hcl:7,3-7: Missing required argument; The nats block has no servers;`},
		{"empty servers", `["nats://192.0.2.10:4222"]`, `[]`, `f.hcl:8,15-17: No NATS server;`},
		{"http server", `"nats://192.0.2.10:4222"`, `"http://192.0.2.10:4222"`, `f.hcl:8,16-40: Invalid NATS server; "http://192.0.2.10:4222" has scheme "http"`},
		{"server without scheme", `"nats://192.0.2.10:4222"`, `"192.0.2.10:4222"`, `f.hcl:8,16-33: Invalid NATS server; "192.0.2.10:4222" has no scheme: write "nats://192.0.2.10:4222".`},
		{"server with password", `"nats://192.0.2.10:4222"`, `"nats://u:pw@192.0.2.10"`, `f.hcl:8,16-40: Invalid NATS server; "nats://u:pw@192.0.2.10" holds a user name or password`},
		{"server port", `"nats://192.0.2.10:4222"`, `"nats://192.0.2.10:70000"`, `f.hcl:8,16-41: Invalid NATS server; "nats://192.0.2.10:70000" has port "70000"`},
		{"server twice", `"nats://192.0.2.10:4222"]`, `"nats://192.0.2.10:4222", "nats://192.0.2.10:4222"]`, `f.hcl:8,42-66: Invalid NATS server; "nats://192.0.2.10:4222" is already listed at f.hcl:8,16`},
		{"ws and nats", `"nats://192.0.2.10:4222"]`, `"nats://192.0.2.10:4222", "wss://192.0.2.11"]`, `f.hcl:8,42-60: Invalid NATS server; "wss://192.0.2.11" mixes websocket and plain NATS URLs (see f.hcl:8,16)`},
		{"bad fleet name", `"prod"`, `"prod.eu"`, `f.hcl:2,13-22: Invalid fleet name; "prod.eu" is not a fleet name`},
		{"bad member name", `"bastion-1"`, `"-bastion"`, `f.hcl:3,13-23: Invalid member name; "-bastion" is not a member name`},
		{"long member name", `"bastion-1"`, `"` + strings.Repeat("b", 65) + `"`, `f.hcl:3,13-80: Invalid member name;`},
		{"member not a string", `"bastion-1"`, `1`, `f.hcl:3,13-14: Invalid member; member must be a string, not a number`},
		{"empty key", `"/k"`, `""`, `f.hcl:4,13-15: Empty key;`},
		{"empty groups", `["web", "db"]`, `[]`, `f.hcl:6,13-15: Empty groups;`},
		{"bad group", `["web", "db"]`, `["web", "d*b"]`, `f.hcl:6,21-26: Invalid group name; "d*b" is not a group name`},
		{"group twice", `["web", "db"]`, `["web", "web"]`, `f.hcl:6,21-26: Duplicate group; "web" is already listed at f.hcl:6,14`},
		{"max_skew 0", "  nats {", "  max_skew = \"0s\"\n  nats {", `f.hcl:7,14-18: max_skew out of range; max_skew is 0s, outside 1ms to 1m`},
		{"max_skew 2m", "  nats {", "  max_skew = \"2m\"\n  nats {", `f.hcl:7,14-18: max_skew out of range;`},
		{"two fleet blocks", "door \"ssh\"", "fleet {\n}\ndoor \"ssh\"", `f.hcl:11,1-6: Duplicate fleet block; A fleet block is already defined at f.hcl:1,1`},
		{"two nats blocks", "  }\n}", "  }\n  nats {\n  }\n}", `f.hcl:10,3-7: Duplicate nats block;`},
		{"unknown attribute", `  key     = "/k"`, `  keyfile = "/k"`, `f.hcl:4,3-10: Unsupported argument;`},
		{"door group not in groups", `fleet_groups = ["web"]`, `fleet_groups = ["web", "mail"]`, `f.hcl:14,26-32: Group not in the fleet's groups; Door "ssh" publishes to group "mail"`},
		{"door group twice", `fleet_groups = ["web"]`, `fleet_groups = ["web", "web"]`, `f.hcl:14,26-31: Duplicate group; "web" is already listed at f.hcl:14,19`},
		{"door groups empty", `fleet_groups = ["web"]`, `fleet_groups = []`, `f.hcl:14,18-20: Empty fleet_groups;`},
		{"door group bad name", `fleet_groups = ["web"]`, `fleet_groups = ["we.b"]`, `f.hcl:14,19-25: Invalid group name;`},
		{"door groups not a list", `fleet_groups = ["web"]`, `fleet_groups = "web"`, `f.hcl:14,18-23: Invalid fleet_groups; fleet_groups must be a list, not a string`},
		{"fleet name with _", `"prod"`, `"prod_eu"`, `f.hcl:2,13-22: Invalid fleet name; "prod_eu" has "_", which a fleet name may not have`},
		{"group with _", `["web", "db"]`, `["web", "d_b"]`, `f.hcl:6,21-26: Invalid group name; "d_b" has "_", which a group name may not have`},
		{"static door with confirm", "  confirm      = false\n", "", `f.hcl:14,3-15: fleet_groups on a door with confirm; Door "ssh" confirms its grants`},
		{"door without open", `  open         = ["22/tcp"]`, `  forward      = ["192.0.2.20:22/tcp"]`, `f.hcl:14,3-15: fleet_groups on a door without open; Door "ssh" opens no local port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(fleetBase, tt.old) {
				t.Fatalf("fleetBase has no %q", tt.old)
			}
			src := strings.Replace(fleetBase, tt.old, tt.new, 1)
			p, diags := Parse("f.hcl", []byte(src))
			if p != nil || !diags.HasErrors() {
				t.Fatalf("accepted:\n%s", src)
			}
			if got := diags.Errors()[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first error:\n got %s\nwant %s...\nall:\n%s", got, tt.want, diags.Error())
			}
		})
	}
}

// TestFleetGroupsWithoutFleet: a door of any kind that names fleet_groups
// in a config without a fleet block is an error at the attribute.
func TestFleetGroupsWithoutFleet(t *testing.T) {
	t.Parallel()
	src := strings.SplitN(fleetBase, "door", 2)[1]
	p, diags := Parse("f.hcl", []byte("door"+src))
	if p != nil {
		t.Fatal("accepted")
	}
	want := `f.hcl:4,3-15: fleet_groups without a fleet block; Door "ssh" publishes its opens to fleet groups, but the config has no fleet block.`
	if got := diags.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("got %s\nwant %s...", got, want)
	}
}

func TestValidFleetName(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"prod": true, "web-1": true, "a_b": true, "0": true, strings.Repeat("x", 64): true,
		"": false, "-a": false, "_a": false, "a.b": false, "a:b": false, "a*": false, "a>": false,
		"a b": false, "é": false, strings.Repeat("x", 65): false,
	} {
		if got := ValidFleetName(s); got != want {
			t.Errorf("ValidFleetName(%q) = %v, want %v", s, got, want)
		}
	}
}

// onlyStaticFleetWarning reports whether diags hold exactly the warning
// that a static door with fleet_groups opens the whole group (the fixtures
// have one such door).
func onlyStaticFleetWarning(diags Diagnostics) bool {
	all := diags.All()
	return len(all) == 1 && all[0].Severity == hcl.DiagWarning && all[0].Summary == "A static sequence opens the whole group"
}

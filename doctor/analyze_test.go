package doctor

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sesameTable stands for sesame's own table, which every case but one has.
const sesameTable = "table inet sesame {\n}\n"

func fixture(t *testing.T, names ...string) string {
	t.Helper()
	s := sesameTable
	for _, n := range names {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			t.Fatal(err)
		}
		s += string(b)
	}
	return s
}

// fixRule is what the suggested fix does to the ruleset, as nft text: the
// rule it adds to a chain (at its start: nft insert; ufw and firewalld
// add theirs to the chain they keep for it).
type fixRule struct {
	family, table, chain, rule string
	insert                     bool
}

func (f fixRule) apply(t *testing.T, rs *Ruleset) {
	t.Helper()
	for i := range rs.Tables {
		tb := &rs.Tables[i]
		if tb.Family != f.family || tb.Name != f.table {
			continue
		}
		for j := range tb.Chains {
			c := &tb.Chains[j]
			if c.Name != f.chain {
				continue
			}
			r := parseRule(t, f.rule)
			r.Handle = 1000
			if f.insert {
				c.Rules = append([]Rule{r}, c.Rules...)
			} else {
				c.Rules = append(c.Rules, r)
			}
			return
		}
	}
	t.Fatalf("fix: no chain %s %s %s", f.family, f.table, f.chain)
}

// brief is what a test compares of a finding.
type brief struct {
	Kind   Kind
	Port   string
	Chain  string // family table chain
	Policy bool
	Fix    string // a part of the fix
}

// briefs reduces fs to what the tests compare; Fix is set to the Fix of
// the wanted finding it contains.
func briefs(fs []Finding, want []brief) []brief {
	var out []brief
	for _, f := range fs {
		b := brief{Kind: f.Kind, Port: f.Port, Policy: f.Where.Policy}
		if f.Where.Table != "" {
			b.Chain = f.Where.Family + " " + f.Where.Table + " " + f.Where.Chain
		}
		for _, w := range want {
			if w.Fix != "" && strings.Contains(f.Fix, w.Fix) {
				b.Fix = w.Fix
			}
		}
		out = append(out, b)
	}
	return out
}

var (
	ssh    = Port{Proto: 6, Port: 22, Doors: []string{"ssh"}}
	sshC   = Port{Proto: 6, Port: 22, Doors: []string{"ssh"}, Confirm: true}
	web    = Port{Proto: 6, Port: 80, Doors: []string{"web"}}
	alt    = Port{Proto: 6, Port: 2222, Doors: []string{"alt"}}
	docker = Port{Proto: 6, Port: 8080, Doors: []string{"app"}}
	dns    = Port{Proto: 17, Port: 53, Doors: []string{"dns"}}

	// forward targets: Docker's published port, the container's own
	// port (a mistake: the door must list the published one), a
	// routed backend, a VPN-only DNAT
	fwdApp    = Forward{Proto: 6, Port: 8080, Doors: []string{"app"}}
	fwdInner  = Forward{Proto: 6, Port: 80, Doors: []string{"app"}}
	fwdRouted = Forward{Addr: netip.MustParseAddr("192.0.2.10"), Proto: 6, Port: 22, Doors: []string{"bastion"}}
	fwdVPN    = Forward{Proto: 6, Port: 8443, Doors: []string{"vpn"}}
)

type diagCase struct {
	name     string
	fixtures []string
	ports    []Port
	want     []brief
	fixes    []fixRule // applied, the findings are gone
	pre      []fixRule // applied before the diagnosis
	sets     bool      // table_mode = "sets" in table filter
	forwards []Forward
	outside  []string
}

var diagCases = []diagCase{
	{
		name: "nftables.conf policy drop", fixtures: []string{"nftables-conf.nft"}, ports: []Port{ssh, web, dns},
		want: []brief{
			{Kind: Blocked, Port: "22/tcp", Chain: "inet filter input", Policy: true, Fix: "nft insert rule inet filter input tcp dport 22 accept"},
			{Kind: Blocked, Port: "53/udp", Chain: "inet filter input", Policy: true, Fix: "nft insert rule inet filter input udp dport 53 accept"},
		},
		fixes: []fixRule{
			{"inet", "filter", "input", "tcp dport 22 accept", true},
			{"inet", "filter", "input", "udp dport 53 accept", true},
		},
	},
	{
		name: "firewalld public zone", fixtures: []string{"firewalld.nft"}, ports: []Port{ssh, alt},
		want: []brief{{Kind: Blocked, Port: "2222/tcp", Chain: "inet firewalld filter_INPUT", Fix: "firewall-cmd --permanent --add-port=2222/tcp"}},
		// what firewall-cmd --add-port=2222/tcp adds
		fixes: []fixRule{{"inet", "firewalld", "filter_IN_public_allow", "tcp dport 2222 ct state { new, untracked } accept", false}},
	},
	{
		name: "ufw allow 80", fixtures: []string{"ufw.nft"}, ports: []Port{ssh, web},
		want: []brief{{Kind: Blocked, Port: "22/tcp", Chain: "ip filter INPUT", Policy: true, Fix: "ufw allow 22/tcp"}},
		// what ufw allow 22/tcp adds
		fixes: []fixRule{{"ip", "filter", "ufw-user-input", "tcp dport 22 counter accept", false}},
	},
	{
		name: "docker published port", fixtures: []string{"docker.nft"}, ports: []Port{ssh, docker},
		want: []brief{{Kind: Bypass, Port: "8080/tcp", Chain: "ip nat DOCKER", Fix: "forward door"}},
	},
	{
		// Docker's FORWARD drops by default, and its DOCKER chain accepts
		// the published port: a forward door for it is clean.
		name: "docker published port, forward door", fixtures: []string{"docker.nft"}, ports: []Port{ssh},
		forwards: []Forward{fwdApp}, outside: []string{"eth0"},
	},
	{
		name: "docker published port, forward door, outside unknown", fixtures: []string{"docker.nft"}, ports: []Port{ssh},
		forwards: []Forward{fwdApp},
	},
	{
		// The door lists the container's port, not the published one:
		// sesame's forward chain matches the original port, never 80.
		name: "docker, forward door for the container's port", fixtures: []string{"docker.nft"}, ports: []Port{ssh},
		forwards: []Forward{fwdInner}, outside: []string{"eth0"},
		want: []brief{{Kind: Bypass, Port: "80/tcp", Chain: "ip nat DOCKER", Fix: "HOST port"}},
	},
	{
		name: "nftables.conf forward policy drop", fixtures: []string{"nftables-conf.nft"}, ports: []Port{web},
		forwards: []Forward{fwdApp, fwdRouted}, outside: []string{"eth0"},
		want: []brief{
			{Kind: Blocked, Port: "8080/tcp", Chain: "inet filter forward", Policy: true, Fix: "nft insert rule inet filter forward ct status dnat meta l4proto tcp ct original proto-dst 8080 accept"},
			{Kind: Blocked, Port: "192.0.2.10:22/tcp", Chain: "inet filter forward", Policy: true, Fix: "nft insert rule inet filter forward ip daddr 192.0.2.10 tcp dport 22 accept"},
		},
		fixes: []fixRule{
			{"inet", "filter", "forward", "ct status dnat meta l4proto tcp ct original proto-dst 8080 accept", true},
			{"inet", "filter", "forward", "ip daddr 192.0.2.10 tcp dport 22 accept", true},
		},
	},
	{
		// An accept for another forwarded port does not let 8080 through.
		name: "nftables.conf forward accept of another port", fixtures: []string{"nftables-conf.nft"}, ports: []Port{web},
		forwards: []Forward{fwdApp}, outside: []string{"eth0"},
		want:  []brief{{Kind: Blocked, Port: "8080/tcp", Chain: "inet filter forward", Policy: true}},
		fixes: []fixRule{{"inet", "filter", "forward", "ct status dnat meta l4proto tcp ct original proto-dst 8080 accept", false}},
		pre:   []fixRule{{"inet", "filter", "forward", "ct status dnat meta l4proto tcp ct original proto-dst 9090 accept", false}},
	},
	{
		name: "dnat from an interface that is not outside", fixtures: []string{"dnat-inside.nft"},
		forwards: []Forward{fwdVPN}, outside: []string{"eth0"},
		want: []brief{{Kind: Bypass, Port: "8443/tcp", Chain: "ip nat prerouting", Fix: `add "wg0" to interfaces`}},
	},
	{
		name: "redirect of the guarded port", fixtures: []string{"redirect.nft"}, ports: []Port{ssh},
		want: []brief{{Kind: Bypass, Port: "22/tcp", Chain: "inet nat prerouting"}},
	},
	{
		name: "notrack and a confirming door", fixtures: []string{"raw-notrack.nft"}, ports: []Port{sshC, web},
		want: []brief{{Kind: Untracked, Port: "22/tcp", Chain: "inet raw prerouting", Fix: "confirm = false"}},
	},
	{
		name: "an accept before sesame is not final", fixtures: []string{"early-accept.nft"}, ports: []Port{ssh},
	},
	{
		name: "accept for the port", fixtures: []string{"nftables-conf.nft"}, ports: []Port{web},
	},
	{
		name: "sets mode, used", fixtures: []string{"sets-mode.nft"}, ports: []Port{ssh, web}, sets: true,
	},
	{
		name: "sets mode, no jump", fixtures: []string{"sets-mode-nojump.nft"}, ports: []Port{ssh}, sets: true,
		want: []brief{
			{Kind: SetsUnused, Chain: "inet filter ", Fix: "jump sesame_input"},
			{Kind: Blocked, Port: "22/tcp", Chain: "inet filter input", Policy: true},
		},
		fixes: []fixRule{{"inet", "filter", "input", "jump sesame_input", true}},
	},
	{
		// In sets mode an accept in the admin's chain is final for sesame
		// too: its drop is in that chain.
		name: "sets mode, jump after an accept", fixtures: []string{"sets-mode-late.nft"}, ports: []Port{ssh}, sets: true,
		want:  []brief{{Kind: Bypass, Port: "22/tcp", Chain: "inet filter input", Fix: "make `jump sesame_input` the first rule"}},
		fixes: []fixRule{{"inet", "filter", "input", "jump sesame_input", true}},
	},
	{
		// The admin's forward chain does not jump to sesame_forward: the
		// forwarded service is as open as that chain leaves it. The jump,
		// first, is the fix.
		name: "sets mode, forward door, no forward jump", fixtures: []string{"sets-mode-forward.nft"}, ports: []Port{ssh}, sets: true,
		forwards: []Forward{fwdApp}, outside: []string{"eth0"},
		want:  []brief{{Kind: SetsUnused, Chain: "inet filter ", Fix: "jump sesame_forward"}},
		fixes: []fixRule{{"inet", "filter", "forward", "jump sesame_forward", true}},
	},
}

func (c diagCase) input() Input {
	if c.sets {
		return Input{Table: "filter", Ports: c.ports, SetsChain: "sesame_input", SetsForwardChain: "sesame_forward", Forwards: c.forwards, Outside: c.outside}
	}
	return Input{Table: "sesame", Ports: c.ports, Forwards: c.forwards, Outside: c.outside}
}

func TestDiagnose(t *testing.T) {
	t.Parallel()
	for _, c := range diagCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rs := parseNft(t, fixture(t, c.fixtures...))
			for _, f := range c.pre {
				f.apply(t, &rs)
			}
			in := c.input()
			got := Diagnose(rs, in)
			if d := cmp.Diff(c.want, briefs(got, c.want)); d != "" {
				t.Errorf("findings (-want +got):\n%s\n%v", d, got)
			}
			for _, f := range c.fixes {
				f.apply(t, &rs)
			}
			if c.fixes != nil {
				if got := Diagnose(rs, in); len(got) != 0 {
					t.Errorf("after the fix: %v", got)
				}
			}
		})
	}
}

func TestDiagnoseNoTable(t *testing.T) {
	t.Parallel()
	got := Diagnose(Ruleset{}, Input{Table: "sesame", Ports: []Port{ssh}})
	if d := cmp.Diff([]brief{{Kind: NoTable}}, briefs(got, nil)); d != "" {
		t.Error(d)
	}
	if got := Diagnose(Ruleset{}, Input{Table: "sesame"}); len(got) != 0 {
		t.Errorf("no door: %v", got)
	}
}

func TestDiagnoseLegacy(t *testing.T) {
	t.Parallel()
	rs := parseNft(t, sesameTable)
	rs.Legacy = []LegacyTable{{Family: "ip", Name: "nat"}, {Family: "ip", Name: "filter", Rules: 3}, {Family: "ip6", Name: "filter", DropHooks: []string{"INPUT"}}}
	got := Diagnose(rs, Input{Table: "sesame", Ports: []Port{ssh}})
	if d := cmp.Diff([]brief{{Kind: Legacy}, {Kind: Legacy}}, briefs(got, nil)); d != "" {
		t.Error(d)
	}
	for _, f := range got {
		if !strings.Contains(f.Fix, "legacy-save") {
			t.Errorf("fix: %s", f.Fix)
		}
	}
}

// TestDiagnoseLoop: a chain that jumps to itself (the kernel refuses a
// loop, a model need not) ends the walk.
func TestDiagnoseLoop(t *testing.T) {
	t.Parallel()
	rs := parseNft(t, sesameTable+`table inet loop {
	chain input {
		type filter hook input priority filter; policy drop;
		jump a
	}
	chain a {
		jump a
		tcp dport 22 accept
	}
}
`)
	got := Diagnose(rs, Input{Table: "sesame", Ports: []Port{ssh}})
	if len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

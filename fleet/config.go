package fleet

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/policy"
)

// Config is a host's fleet configuration: what the policy's fleet block
// names, read and checked against members.hcl.
type Config struct {
	Self    Self               // the receiver's view, for Decide
	Member  string             // this host's member name, the origin of what it publishes
	Key     ed25519.PrivateKey // its signing key
	Members *Members
	Servers []string // NATS URLs
	Creds   string   // NATS credentials file; "" for none
	CA      string   // PEM trust for TLS; "" for the system's
	// Publish maps each door that publishes (fleet_groups) to its groups,
	// each covered by this member's may_grant.
	Publish map[string][]string
}

// Load reads and validates the config file at path (policy.Load) and,
// when it has no error, the fleet files it names (LoadConfig): what
// sesame check and sesame run both accept. The Policy is nil when the
// diagnostics hold an error; the Config is nil also without a fleet block.
func Load(path string) (*policy.Policy, *Config, policy.Diagnostics) {
	p, diags := policy.Load(path)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	c, fd := LoadConfig(p)
	diags = diags.Extend(fd)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	return p, c, diags
}

// LoadConfig reads what p's fleet block names (the private key, the
// members file, the creds and CA files) and checks it: the key file is
// 0600 or stricter and its public half is the member's key in members.hcl;
// the member is in members.hcl; its may_grant covers every door's
// fleet_groups. A door that some member may grant in one of this host's
// groups but that this host does not define is a warning. Diagnostics point
// at the fleet block's attributes (p.Fleet.At). It returns nil and no
// diagnostics when p has no fleet block, and nil with errors.
func LoadConfig(p *policy.Policy) (*Config, hcl.Diagnostics) {
	f := p.Fleet
	if f == nil {
		return nil, nil
	}
	var diags hcl.Diagnostics
	c := &Config{
		Self:    Self{Fleet: f.Name, Groups: f.Groups, Doors: DoorsOf(p), MaxSkew: f.MaxSkew},
		Member:  f.Member,
		Servers: f.Servers,
		Creds:   f.Creds,
		CA:      f.CA,
		Publish: map[string][]string{},
	}
	key, kerr := readKey(f)
	diags = append(diags, kerr...)
	c.Key = key
	ms, mdiags := LoadMembers(f.MembersFile)
	for _, d := range mdiags {
		if d.Subject == nil { // unreadable: point at the attribute that names it
			d.Subject = f.At.Members.Ptr()
		}
	}
	diags = append(diags, mdiags...)
	c.Members = ms
	diags = append(diags, checkFile(f.Creds, f.At.Creds, "creds", true)...)
	diags = append(diags, checkFile(f.CA, f.At.CA, "ca", false)...)
	if ms != nil {
		diags = append(diags, c.checkMember(p, ms)...)
		diags = append(diags, unknownDoors(p, ms)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return c, diags
}

// readKey reads and parses the fleet block's key file.
func readKey(f *policy.Fleet) (ed25519.PrivateKey, hcl.Diagnostics) {
	b, err := secretfile.Read(f.KeyFile)
	var mode *secretfile.ModeError
	bad := func(summary, detail string, args ...any) (ed25519.PrivateKey, hcl.Diagnostics) {
		return nil, hcl.Diagnostics{errorf(f.At.Key, summary, detail, args...)}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("Missing key file", "The fleet key file %s does not exist. sesame keygen --fleet -o %s --member %s writes one and prints its members.hcl stanza.", f.KeyFile, f.KeyFile, f.Member)
	case errors.As(err, &mode):
		return bad("Key file readable by others", "The fleet key file %s has mode %04o: group or others may read or write it, and whoever reads it can open doors across the fleet. Run chmod 600 %s.", f.KeyFile, mode.Mode, f.KeyFile)
	case err != nil:
		return bad("Unreadable key file", "The fleet key file: %v.", err)
	}
	key, err := ParsePrivateKey(b)
	if err != nil {
		return bad("Invalid key file", "The fleet key file %s: %v.", f.KeyFile, err)
	}
	return key, nil
}

// checkFile checks the creds or ca file at path (unset when ""): it
// exists, and a secret (creds: it holds an nkey seed) is 0600 or
// stricter; a ca file holds PEM certificates.
func checkFile(path string, at hcl.Range, attr string, secret bool) hcl.Diagnostics {
	if path == "" {
		return nil
	}
	var b []byte
	var err error
	if secret {
		b, err = secretfile.Read(path)
	} else if st, serr := os.Stat(path); serr != nil {
		err = serr
	} else if !st.Mode().IsRegular() { // a FIFO would block the read
		err = fmt.Errorf("%s: %w", path, secretfile.ErrNotRegular)
	} else {
		b, err = os.ReadFile(path)
	}
	var mode *secretfile.ModeError
	switch {
	case errors.As(err, &mode):
		return hcl.Diagnostics{errorf(at, "Credentials file readable by others", "The NATS credentials file %s has mode %04o: group or others may read or write it. Run chmod 600 %s.", path, mode.Mode, path)}
	case err != nil:
		return hcl.Diagnostics{errorf(at, "Unreadable "+attr+" file", "The fleet's %s file: %v.", attr, err)}
	}
	if !secret && !x509.NewCertPool().AppendCertsFromPEM(b) {
		return hcl.Diagnostics{errorf(at, "Invalid ca file", "The fleet's ca file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----).", path)}
	}
	return nil
}

// checkMember checks this host against members.hcl: it is a member, its
// key is the member's, and its may_grant covers each door's fleet_groups.
// It fills c.Publish.
func (c *Config) checkMember(p *policy.Policy, ms *Members) hcl.Diagnostics {
	f := p.Fleet
	self := ms.Member(f.Member)
	if self == nil {
		return hcl.Diagnostics{errorf(f.At.Member, "Unknown member", "Member %q is not in %s: add the member \"%s\" { key = ..., may_grant = ... } stanza that sesame keygen --fleet printed, or fix the name.", f.Member, f.MembersFile, f.Member)}
	}
	var diags hcl.Diagnostics
	if c.Key != nil && !self.Key.Equal(c.Key.Public()) {
		diags = append(diags, errorf(f.At.Key, "Key does not match members.hcl", "The fleet key file %s holds the key of %s, but member %q's key in %s is %s: every record this host signs would be refused. Use the member's key file, or put this key in members.hcl.", f.KeyFile, FormatKey(c.Key.Public().(ed25519.PublicKey)), f.Member, f.MembersFile, FormatKey(self.Key)))
	}
	for _, d := range p.Doors {
		if len(d.FleetGroups) == 0 {
			continue
		}
		at := f.At.Doors[d.Name]
		var ok []string
		for i, g := range d.FleetGroups {
			if !self.May(g, d.Name) {
				rng := f.Range
				if i < len(at) {
					rng = at[i]
				}
				diags = append(diags, errorf(rng, "Not in may_grant", "Door %q publishes to group %q, but member %q's may_grant in %s does not give it door %q in %q: every host would refuse what it publishes (not-allowed). Add %q to may_grant's %s list, or remove the group here.", d.Name, g, f.Member, f.MembersFile, d.Name, g, d.Name, g))
				continue
			}
			ok = append(ok, g)
		}
		c.Publish[d.Name] = ok
	}
	return diags
}

// unknownDoors warns, once per (group, door), about a door that some
// member may grant in one of this host's groups but that this host does
// not define: such records are refused here (unknown-door).
func unknownDoors(p *policy.Policy, ms *Members) hcl.Diagnostics {
	f := p.Fleet
	type gd struct{ group, door string }
	who := map[gd][]string{}
	var order []gd
	for _, name := range ms.names() {
		for _, g := range f.Groups {
			for _, door := range ms.Member(name).MayGrant[g] {
				if p.Door(door) != nil {
					continue
				}
				k := gd{g, door}
				if who[k] == nil {
					order = append(order, k)
				}
				who[k] = append(who[k], name)
			}
		}
	}
	var diags hcl.Diagnostics
	for _, k := range order {
		rng := f.Range
		if i := slices.Index(f.Groups, k.group); i >= 0 && i < len(f.At.Groups) {
			rng = f.At.Groups[i]
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Door granted in the fleet but not defined here",
			Detail: fmt.Sprintf("members.hcl lets %s grant door %q in group %q, which this host applies, but this host has no door %q: their records for it are refused here (unknown-door). Define the door here, or remove it from their may_grant.",
				memberList(who[k]), k.door, k.group, k.door),
			Subject: rng.Ptr(),
		})
	}
	return diags
}

// memberList names members for a message: "member a", "members a, b and
// c", or the first five and a count.
func memberList(names []string) string {
	if len(names) == 1 {
		return "member " + names[0]
	}
	if len(names) > 5 {
		return fmt.Sprintf("members %s and %d more", strings.Join(names[:5], ", "), len(names)-5)
	}
	return "members " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// names returns the member names, sorted.
func (ms *Members) names() []string {
	out := make([]string, 0, len(ms.byName))
	for n := range ms.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

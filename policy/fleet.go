package policy

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// The fleet block (fleet mode, docs/design.md "Fleet"): this host as a
// member of a fleet. Package policy checks what the block says by itself
// and the doors' fleet_groups against it; package fleet reads the files it
// names (fleet.LoadConfig) and checks them against members.hcl.

// Fleet defaults and bounds, stated in validation errors.
const (
	DefaultMaxSkew = 2 * time.Second
	MinMaxSkew     = time.Millisecond // records carry milliseconds
	MaxMaxSkew     = time.Minute
	// MaxFleetName is the longest fleet, member or group name.
	MaxFleetName = 64
)

// What each fleet attribute allows, said in the Detail of its errors.
const (
	// AllowFleetName is the rule of ValidFleetName, for messages.
	AllowFleetName    = `a name that starts with a letter or digit, then letters, digits, "_" or "-", at most 64 characters`
	allowFleetKey     = `the path of this member's Ed25519 private key, as sesame keygen --fleet -o FILE writes it (mode 0600)`
	allowFleetMembers = `the path of members.hcl: every member's public key and may_grant`
	allowFleetGroups  = `a list of one or more group names, each once, e.g. ["web"]: the groups whose grants this host applies`
	allowFleetServers = `a list of one or more NATS server URLs such as "nats://192.0.2.10:4222", with scheme nats or tls (or ws, wss: all websocket or none)`
	allowFleetPath    = `a file path`
	allowFleetDoor    = `a list of one or more groups of the fleet block's groups, each once, e.g. ["web"]`
)

// bucketNames is the detail of a fleet or group name with "_".
const bucketNames = `%q has "_", which a %s name may not have: the NATS bucket of a group is named sesame_FLEET_GROUP, so with "_" two fleets could share a bucket (fleet "a_b" with group "c", fleet "a" with group "b_c"). Use "-".`

// ValidFleetName reports whether s is a fleet, member or group name: 1 to
// MaxFleetName of letters, digits, "_" and "-", starting with a letter or
// digit. Names end up in grant comments ("fleet:DOOR:ORIGIN:ID"), NATS
// subjects and KV bucket names, so they hold no ":", "." or "*".
func ValidFleetName(s string) bool {
	if s == "" || len(s) > MaxFleetName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c), isDigit(c):
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// FleetAt is where the fleet block's attributes are written, for the
// diagnostics of checks made outside package policy (fleet.LoadConfig).
type FleetAt struct {
	Name, Member, Key, Members, Creds, CA hcl.Range
	Groups                                []hcl.Range // one per Fleet.Groups element
	Servers                               []hcl.Range // one per Fleet.Servers element
	// Doors holds, per door name, the ranges of its fleet_groups
	// elements, one per Door.FleetGroups element.
	Doors map[string][]hcl.Range
}

// rawFleet is the fleet block as HCL decodes it.
type rawFleet struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Name     *hcl.Attribute `hcl:"name,optional"`
	Member   *hcl.Attribute `hcl:"member,optional"`
	Key      *hcl.Attribute `hcl:"key,optional"`
	Members  *hcl.Attribute `hcl:"members,optional"`
	Groups   *hcl.Attribute `hcl:"groups,optional"`
	MaxSkew  *hcl.Attribute `hcl:"max_skew,optional"`
	NATS     []rawNATS      `hcl:"nats,block"`
}

// rawNATS is the fleet block's nats block.
type rawNATS struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Servers  *hcl.Attribute `hcl:"servers,optional"`
	Creds    *hcl.Attribute `hcl:"creds,optional"`
	CA       *hcl.Attribute `hcl:"ca,optional"`
}

// fleet validates the fleet blocks (at most one). It returns nil when
// there is none; with errors, it returns what was valid, for the doors'
// fleet_groups checks (the Policy is then dropped anyway).
func (v *validator) fleet(blocks []rawFleet) *Fleet {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		v.add(errorf(b.DefRange, "Duplicate fleet block", "A fleet block is already defined at %s; a host is a member of one fleet.", pos(blocks[0].DefRange)))
	}
	rf := &blocks[0]
	f := &Fleet{Range: rf.DefRange, MaxSkew: DefaultMaxSkew, At: FleetAt{Doors: map[string][]hcl.Range{}}}
	missing := func(what, allowed string) {
		v.add(errorf(rf.DefRange, "Missing required argument", "The fleet block has no %s; it is %s.", what, allowed))
	}
	name := func(attr *hcl.Attribute, what string) (string, hcl.Range) {
		if attr == nil {
			missing(what, AllowFleetName)
			return "", hcl.Range{}
		}
		s, ok := v.str(attr, AllowFleetName)
		if ok && !ValidFleetName(s) {
			v.add(errorf(attr.Expr.Range(), "Invalid "+what+" name", "%q is not a %s name: it is %s.", s, what, AllowFleetName))
			s = ""
		}
		return s, attr.Expr.Range()
	}
	path := func(attr *hcl.Attribute, allowed string) (string, hcl.Range) {
		s, ok := v.str(attr, allowed)
		if ok && s == "" {
			v.add(errorf(attr.Expr.Range(), "Empty "+attr.Name, "%s is %s.", attr.Name, allowed))
		}
		if !ok || s == "" {
			return "", attr.Expr.Range()
		}
		return v.resolve(s), attr.Expr.Range()
	}
	f.Name, f.At.Name = name(rf.Name, "fleet")
	f.Member, f.At.Member = name(rf.Member, "member")
	if rf.Key == nil {
		missing("key", allowFleetKey)
	} else {
		f.KeyFile, f.At.Key = path(rf.Key, allowFleetKey)
	}
	if rf.Members == nil {
		missing("members", allowFleetMembers)
	} else {
		f.MembersFile, f.At.Members = path(rf.Members, allowFleetMembers)
	}
	if rf.Groups == nil {
		missing("groups", allowFleetGroups)
	} else {
		f.Groups, f.At.Groups = v.names(rf.Groups, "group", allowFleetGroups)
	}
	// The bucket of a group is sesame_FLEET_GROUP: with "_" in either
	// name, fleet "a_b" group "c" and fleet "a" group "b_c" would share one.
	if strings.Contains(f.Name, "_") {
		v.add(errorf(f.At.Name, "Invalid fleet name", bucketNames, f.Name, "fleet"))
	}
	for i := 0; i < len(f.Groups); i++ {
		if strings.Contains(f.Groups[i], "_") {
			v.add(errorf(f.At.Groups[i], "Invalid group name", bucketNames, f.Groups[i], "group"))
			f.Groups, f.At.Groups = slices.Delete(f.Groups, i, i+1), slices.Delete(f.At.Groups, i, i+1)
			i--
		}
	}
	if ms, ok := v.duration(rf.MaxSkew, DefaultMaxSkew, MinMaxSkew, MaxMaxSkew); ok {
		f.MaxSkew = ms
	}
	if len(rf.NATS) == 0 {
		missing("nats block", `nats { servers = ["nats://HOST:4222", ...] }, with optional creds and ca files`)
		return f
	}
	for _, b := range rf.NATS[1:] {
		v.add(errorf(b.DefRange, "Duplicate nats block", "The fleet block already has a nats block at %s.", pos(rf.NATS[0].DefRange)))
	}
	rn := &rf.NATS[0]
	if rn.Servers == nil {
		v.add(errorf(rn.DefRange, "Missing required argument", "The nats block has no servers; it is %s.", allowFleetServers))
	} else {
		f.Servers, f.At.Servers = v.servers(rn.Servers)
	}
	if rn.Creds != nil {
		f.Creds, f.At.Creds = path(rn.Creds, "the path of a NATS credentials file (.creds), mode 0600")
	}
	if rn.CA != nil {
		f.CA, f.At.CA = path(rn.CA, "the path of PEM certificates that sign the servers' TLS certificates")
	}
	return f
}

// names evaluates attr as a non-empty list of distinct fleet names (what
// names one of them in messages), with the range of each.
func (v *validator) names(attr *hcl.Attribute, what, allowed string) ([]string, []hcl.Range) {
	items, ok := v.list(attr, allowed)
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		v.add(errorf(attr.Expr.Range(), "Empty "+attr.Name, "%s is %s.", attr.Name, allowed))
		return nil, nil
	}
	var out []string
	var rngs []hcl.Range
	for _, it := range items {
		if it.val.IsNull() || it.val.Type() != cty.String {
			v.add(errorf(it.rng, "Invalid "+what+" name", "A %s name is a string: %s is %s.", what, attr.Name, allowed))
			continue
		}
		s := it.val.AsString()
		if !ValidFleetName(s) {
			v.add(errorf(it.rng, "Invalid "+what+" name", "%q is not a %s name: it is %s.", s, what, AllowFleetName))
			continue
		}
		if i := slices.Index(out, s); i >= 0 {
			v.add(errorf(it.rng, "Duplicate "+what, "%q is already listed at %s; list each %s once.", s, pos(rngs[i]), what))
			continue
		}
		out = append(out, s)
		rngs = append(rngs, it.rng)
	}
	return out, rngs
}

// servers evaluates the nats block's servers: URLs that nats.go connects
// to, without a password (sesame.hcl is not a secret; use creds).
func (v *validator) servers(attr *hcl.Attribute) ([]string, []hcl.Range) {
	items, ok := v.list(attr, allowFleetServers)
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		v.add(errorf(attr.Expr.Range(), "No NATS server", "servers is %s.", allowFleetServers))
		return nil, nil
	}
	var out []string
	var rngs []hcl.Range
	ws := -1 // index of the first server, once its websocket-ness is known
	for _, it := range items {
		bad := func(format string, args ...any) {
			v.add(errorf(it.rng, "Invalid NATS server", format+" servers is %s.", append(args, allowFleetServers)...))
		}
		if it.val.IsNull() || it.val.Type() != cty.String {
			bad("A server is a URL string.")
			continue
		}
		s := it.val.AsString()
		if !strings.Contains(s, "://") {
			bad("%q has no scheme: write %q.", s, "nats://"+s)
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			bad("%q is not a URL.", s)
			continue
		}
		switch {
		case !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme):
			bad("%q has scheme %q, not nats, tls, ws or wss.", s, u.Scheme)
			continue
		case u.Hostname() == "" || u.Opaque != "":
			bad("%q names no host.", s)
			continue
		case u.User != nil:
			bad("%q holds a user name or password: sesame.hcl is readable by others. Put the credentials in a creds file.", s)
			continue
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
			bad("%q has a path, query or fragment; a server URL is SCHEME://HOST[:PORT].", s)
			continue
		case !validPort(u.Port()):
			bad("%q has port %q, not 1 to 65535.", s, u.Port())
			continue
		}
		isWS := strings.HasPrefix(u.Scheme, "ws")
		if ws >= 0 && isWS != strings.HasPrefix(out[ws], "ws") {
			bad("%q mixes websocket and plain NATS URLs (see %s); the client refuses a mix.", s, pos(rngs[ws]))
			continue
		}
		if i := slices.Index(out, s); i >= 0 {
			bad("%q is already listed at %s; list each server once.", s, pos(rngs[i]))
			continue
		}
		if ws < 0 {
			ws = len(out)
		}
		out = append(out, s)
		rngs = append(rngs, it.rng)
	}
	return out, rngs
}

// validPort reports whether a URL's port is "" (the default) or 1..65535.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// fleetGroups validates every door's fleet_groups against the fleet
// block f (nil when absent). declared says whether the config has a
// fleet block at all (f may hold only its valid parts).
func (v *validator) fleetGroups(raw *rawConfig, p *Policy, declared bool) {
	for i := range raw.Doors {
		attr := raw.Doors[i].FleetGroups
		if attr == nil {
			continue
		}
		d := &p.Doors[i]
		if !declared {
			v.add(errorf(attr.NameRange, "fleet_groups without a fleet block", "Door %q publishes its opens to fleet groups, but the config has no fleet block. Add fleet { ... } (see sesame.hcl(5)) or remove fleet_groups.", d.Name))
			continue
		}
		groups, rngs := v.names(attr, "group", allowFleetDoor)
		var keep []string
		var keepR []hcl.Range
		for j, g := range groups {
			if p.Fleet != nil && p.Fleet.At.Groups != nil && !slices.Contains(p.Fleet.Groups, g) {
				v.add(errorf(rngs[j], "Group not in the fleet's groups", "Door %q publishes to group %q, which is not in the fleet block's groups (%s). Add it there, or remove it here.", d.Name, g, strings.Join(p.Fleet.Groups, ", ")))
				continue
			}
			keep, keepR = append(keep, g), append(keepR, rngs[j])
		}
		d.FleetGroups = keep
		if p.Fleet != nil && keep != nil {
			p.Fleet.At.Doors[d.Name] = keepR
		}
		if len(keep) == 0 {
			continue
		}
		switch {
		case len(d.Open) == 0:
			v.add(errorf(attr.NameRange, "fleet_groups on a door without open", "Door %q opens no local port (only forward targets), and a fleet record names the ports it opens: add open = [...], or remove fleet_groups.", d.Name))
		case d.Kind() == KindStatic && d.Confirm:
			v.add(errorf(attr.NameRange, "fleet_groups on a door with confirm", "Door %q confirms its grants by the knocker's handshake (confirm, on by default for a sequence), which cannot happen at the other hosts: a fleet grant would never be confirmed there, or be confirmed past its deadline. Use a TOTP, one-time or SPA door (they prove a secret), or set confirm = false.", d.Name))
		case d.Kind() == KindStatic:
			v.add(warnf(attr.NameRange, "A static sequence opens the whole group", "Door %q is a fixed sequence: anyone who sees or guesses it, or spoofs it from an address they want opened, opens it on every host of %s, not only here. Prefer a TOTP, one-time or SPA door for fleet_groups.", d.Name, strings.Join(keep, ", ")))
		}
	}
}

// fleetSummary writes the fleet block's line and its doors' groups.
func (f *Fleet) summary(b *strings.Builder, doors []Door) {
	fmt.Fprintf(b, "fleet:      %s, member %s, groups %s, servers %s, max skew %s\n",
		f.Name, f.Member, strings.Join(f.Groups, ","), strings.Join(f.Servers, ","), fmtDur(f.MaxSkew))
	n := 0
	for _, d := range doors {
		if len(d.FleetGroups) > 0 {
			fmt.Fprintf(b, "  %s: publishes to %s\n", d.Name, strings.Join(d.FleetGroups, ","))
			n++
		}
	}
	if n == 0 {
		b.WriteString("  no door publishes (fleet_groups): this host only applies the groups' grants\n")
	}
}

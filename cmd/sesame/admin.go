package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// maxGrantFor bounds a manual grant's length.
const maxGrantFor = 30 * 24 * time.Hour

// adminTarget loads the config and resolves DOOR and ADDR for grant and
// revoke.
func adminTarget(fs *flags, path string, pos []string, stderr io.Writer) (*policy.Policy, *policy.Door, netip.Addr, error) {
	if len(pos) != 2 {
		return nil, nil, netip.Addr{}, &usageError{
			msg:   fmt.Sprintf("want DOOR ADDR, got %d argument(s)", len(pos)),
			usage: "usage: sesame " + fs.synopsis + "\n",
		}
	}
	p, diags := policy.Load(path)
	if diags.HasErrors() {
		diags.Write(stderr, false)
		return nil, nil, netip.Addr{}, exitStatus(2)
	}
	d := p.Door(pos[0])
	if d == nil {
		names := make([]string, len(p.Doors))
		for i := range p.Doors {
			names[i] = fmt.Sprintf("%q", p.Doors[i].Name)
		}
		known := "it has no doors"
		if len(names) > 0 {
			known = "its doors: " + strings.Join(names, ", ")
		}
		return nil, nil, netip.Addr{}, usageErrorf("no door %q in %s (%s)", pos[0], path, known)
	}
	a, err := parseAddr(pos[1])
	if err != nil {
		return nil, nil, netip.Addr{}, &usageError{msg: err.Error()}
	}
	return p, d, a, nil
}

// parseAddr accepts one unicast IPv4 or IPv6 address.
func parseAddr(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		return netip.Addr{}, fmt.Errorf("address %q: want a single address, not a prefix", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: want an IPv4 or IPv6 address such as 198.51.100.7 or 2001:db8::7", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q: a zone (%%%s) has no meaning in a grant", s, a.Zone())
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || (a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return netip.Addr{}, fmt.Errorf("address %q: want a unicast address", s)
	}
	return a, nil
}

// openTable opens the config's table and checks that it exists.
func openTable(p *policy.Policy) (*nft.Table, error) {
	t, err := nft.New(p.Table)
	if err == nil {
		if _, err = t.List(); err != nil {
			t.Close()
		}
	}
	if errors.Is(err, nft.ErrNoTable) {
		return nil, fmt.Errorf("table inet %s does not exist: start the daemon first (systemctl start sesame), it builds the table", p.Table)
	}
	if err != nil {
		return nil, explainStatus(err)
	}
	return t, nil
}

func grantCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("grant", "grant [-c FILE] [--for DURATION] DOOR ADDR")
	path := fs.configFlag("config `file`")
	dur := fs.Duration("for", 0, "how long the grant lasts (default: the door's open_for)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	p, d, a, err := adminTarget(fs, *path, pos, stderr)
	if err != nil {
		return err
	}
	ttl := d.OpenFor
	if *dur != 0 {
		ttl = *dur
	}
	if ttl < time.Second || ttl > maxGrantFor {
		return usageErrorf("--for %s: want 1s to %s", ttl, maxGrantFor)
	}
	t, err := openTable(p)
	if err != nil {
		return err
	}
	defer t.Close()
	// A manual grant has the door's own sets (its forward targets' too):
	// no knock shortens it and no close sequence revokes it; sesame
	// revoke does.
	g := nft.Grant{Src: a, Door: d.Name, Kind: nft.Manual, Ports: d.Open, Forward: len(d.Forward) > 0, TTL: ttl}
	if err := nft.GrantErr(t.Apply([]nft.Grant{g}, nil), 0); err != nil {
		return explainStatus(err)
	}
	fmt.Fprintf(stdout, "granted %s door %s (%s) for %s\n", a, d.Name, doorTargets(d), ttl)
	return nil
}

func revokeCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("revoke", "revoke [-c FILE] DOOR ADDR")
	path := fs.configFlag("config `file`")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	p, d, a, err := adminTarget(fs, *path, pos, stderr)
	if err != nil {
		return err
	}
	t, err := openTable(p)
	if err != nil {
		return err
	}
	defer t.Close()
	// Pending, open and manual grants, local and forward.
	r := nft.Revoke{Src: a, Door: d.Name, Ports: d.Open, Manual: true, Forward: true}
	if err := nft.RevokeErr(t.Apply(nil, []nft.Revoke{r}), 0); err != nil {
		return explainStatus(err)
	}
	fmt.Fprintf(stdout, "revoked %s door %s (%s); connections already established stay up\n", a, d.Name, doorTargets(d))
	return nil
}

func downCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("down", "down [-c FILE] [--table NAME] --yes")
	path := fs.configFlag("config `file` (for the table name)")
	table := fs.String("table", "", "nftables table `name` (default: the config's)")
	yes := fs.boolFlag("yes", "really remove the table")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	name := *table
	setsOnly := false // table_mode = "sets": the table is the admin's, only sesame's sets go
	if p, diags := policy.Load(*path); !diags.HasErrors() {
		if name == "" {
			name = p.Table
		}
		setsOnly = p.TableMode == policy.TableSets && name == p.Table
	} else if name == "" {
		diags.Write(stderr, false)
		return fmt.Errorf("%s does not load, so the table name is unknown: nothing removed.\n"+
			"Fix the config, or name the table: sesame down --table NAME --yes", *path)
	}
	if setsOnly {
		return downSets(name, *yes, stdout)
	}
	if !*yes {
		return usageErrorf("this removes table inet %s with every grant in it, and opens the guarded ports to everyone\n"+
			"(unless your own ruleset closes them). Stop the daemon first (systemctl stop sesame): a running daemon puts the table back.\n"+
			"Run `sesame down --yes` to do it.", name)
	}
	t, err := nft.New(name)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	defer t.Close()
	err = t.Delete()
	if errors.Is(err, nft.ErrNoTable) {
		fmt.Fprintf(stdout, "table inet %s does not exist: nothing to remove\n", name)
		return nil
	}
	if errors.Is(err, nft.ErrNotOurs) {
		return fmt.Errorf("%w\nsesame did not create table inet %s: refusing to remove it (nft delete table inet %s does, if you mean it)", err, name, name)
	}
	if err != nil {
		return explainStatus(err)
	}
	fmt.Fprintf(stdout, "removed table inet %s\n", name)
	return nil
}

// downSets removes sesame's sets from the admin's table (table_mode =
// "sets") and leaves the table and its chains.
func downSets(name string, yes bool, stdout io.Writer) error {
	if !yes {
		return usageErrorf("this removes sesame's sets (and every grant) from your table inet %s; the table and its chains stay.\n"+
			"Remove the jumps to %s (and %s, with forward doors) and those chains from your ruleset first, and stop the daemon (systemctl stop sesame).\n"+
			"Run `sesame down --yes` to do it.", name, nft.SetsChain, nft.SetsForwardChain)
	}
	t, err := nft.New(name, nft.SetsOnly())
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	defer t.Close()
	err = t.Delete()
	if errors.Is(err, nft.ErrNoTable) {
		fmt.Fprintf(stdout, "table inet %s does not exist: nothing to remove\n", name)
		return nil
	}
	if err != nil {
		return explainStatus(err)
	}
	fmt.Fprintf(stdout, "removed sesame's sets from table inet %s (the table stays)\n", name)
	return nil
}

// doorTargets lists what a grant of d opens: its ports, then its forward
// targets ("22/tcp forward 8080/tcp").
func doorTargets(d *policy.Door) string {
	var parts []string
	if len(d.Open) > 0 {
		parts = append(parts, policy.FormatPorts(d.Open))
	}
	if len(d.Forward) > 0 {
		parts = append(parts, "forward "+policy.FormatTargets(d.Forward))
	}
	return strings.Join(parts, " ")
}

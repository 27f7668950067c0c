package main

import (
	"errors"
	"flag"
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

// parseMixed parses flags that may come before, between or after the
// positional arguments, and returns the positionals.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// verbUsage returns a flag set's Usage: the verb's synopsis, then its
// flags.
func verbUsage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		fmt.Fprintf(fs.Output(), "usage: sesame %s\n", synopsis)
		fs.PrintDefaults()
	}
}

// adminTarget loads the config and resolves DOOR and ADDR for grant and
// revoke.
func adminTarget(verb, path string, pos []string, stderr io.Writer) (*policy.Policy, *policy.Door, netip.Addr, bool) {
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "sesame %s: want DOOR ADDR, got %d argument(s)\nusage: sesame %s [-c FILE]%s DOOR ADDR\n",
			verb, len(pos), verb, map[bool]string{true: " [--for DURATION]"}[verb == "grant"])
		return nil, nil, netip.Addr{}, false
	}
	p, diags := policy.Load(path)
	if diags.HasErrors() {
		diags.Write(stderr, false)
		return nil, nil, netip.Addr{}, false
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
		fmt.Fprintf(stderr, "sesame %s: no door %q in %s (%s)\n", verb, pos[0], path, known)
		return nil, nil, netip.Addr{}, false
	}
	a, err := parseAddr(pos[1])
	if err != nil {
		fmt.Fprintf(stderr, "sesame %s: %v\n", verb, err)
		return nil, nil, netip.Addr{}, false
	}
	return p, d, a, true
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
func openTable(verb string, p *policy.Policy, stderr io.Writer) (*nft.Table, bool) {
	t, err := nft.New(p.Table)
	if err == nil {
		_, err = t.List()
	}
	if errors.Is(err, nft.ErrNoTable) {
		fmt.Fprintf(stderr, "sesame %s: table inet %s does not exist: start the daemon first (systemctl start sesame), it builds the table\n", verb, p.Table)
		return nil, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesame %s: %v\n", verb, explainStatus(err))
		return nil, false
	}
	return t, true
}

func grantMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("grant", stderr)
	fs.Usage = verbUsage(fs, "grant [-c FILE] [--for DURATION] DOOR ADDR")
	path := fs.String("c", policy.DefaultPath, "config `file`")
	dur := fs.Duration("for", 0, "how long the grant lasts (default: the door's open_for)")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	p, d, a, ok := adminTarget("grant", *path, pos, stderr)
	if !ok {
		return 2
	}
	ttl := d.OpenFor
	if *dur != 0 {
		ttl = *dur
	}
	if ttl < time.Second || ttl > maxGrantFor {
		fmt.Fprintf(stderr, "sesame grant: --for %s: want 1s to %s\n", ttl, maxGrantFor)
		return 2
	}
	t, ok := openTable("grant", p, stderr)
	if !ok {
		return 1
	}
	defer t.Close()
	// A manual grant has the door's own set: no knock shortens it and no
	// close sequence revokes it; sesame revoke does.
	if err := t.Grant(a, d.Name, nft.Manual, d.Open, ttl); err != nil {
		fmt.Fprintf(stderr, "sesame grant: %v\n", explainStatus(err))
		return 1
	}
	fmt.Fprintf(stdout, "granted %s door %s (%s) for %s\n", a, d.Name, policy.FormatPorts(d.Open), ttl)
	return 0
}

func revokeMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("revoke", stderr)
	fs.Usage = verbUsage(fs, "revoke [-c FILE] DOOR ADDR")
	path := fs.String("c", policy.DefaultPath, "config `file`")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	p, d, a, ok := adminTarget("revoke", *path, pos, stderr)
	if !ok {
		return 2
	}
	t, ok := openTable("revoke", p, stderr)
	if !ok {
		return 1
	}
	defer t.Close()
	if err := t.Revoke(a, d.Name, d.Open, true); err != nil { // pending, open and manual grants
		fmt.Fprintf(stderr, "sesame revoke: %v\n", explainStatus(err))
		return 1
	}
	fmt.Fprintf(stdout, "revoked %s door %s (%s); connections already established stay up\n", a, d.Name, policy.FormatPorts(d.Open))
	return 0
}

func downMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("down", stderr)
	path := fs.String("c", policy.DefaultPath, "config `file` (for the table name)")
	table := fs.String("table", "", "nftables table `name` (default: the config's)")
	yes := fs.Bool("yes", false, "really remove the table")
	if err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	name := *table
	if name == "" {
		p, diags := policy.Load(*path)
		if diags.HasErrors() {
			diags.Write(stderr, false)
			fmt.Fprintf(stderr, "sesame down: %s does not load, so the table name is unknown: nothing removed.\n"+
				"Fix the config, or name the table: sesame down --table NAME --yes\n", *path)
			return 1
		}
		name = p.Table
	}
	if !*yes {
		fmt.Fprintf(stderr, "sesame down: this removes table inet %s with every grant in it, and opens the guarded ports to everyone\n"+
			"(unless your own ruleset closes them). Stop the daemon first (systemctl stop sesame): a running daemon puts the table back.\n"+
			"Run `sesame down --yes` to do it.\n", name)
		return 2
	}
	t, err := nft.New(name)
	if err != nil {
		fmt.Fprintf(stderr, "sesame down: %v\n", err)
		return 2
	}
	defer t.Close()
	err = t.Delete()
	if errors.Is(err, nft.ErrNoTable) {
		fmt.Fprintf(stdout, "table inet %s does not exist: nothing to remove\n", name)
		return 0
	}
	if errors.Is(err, nft.ErrNotOurs) {
		fmt.Fprintf(stderr, "sesame down: %v\nsesame did not create table inet %s: refusing to remove it (nft delete table inet %s does, if you mean it)\n", err, name, name)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesame down: %v\n", explainStatus(err))
		return 1
	}
	fmt.Fprintf(stdout, "removed table inet %s\n", name)
	return 0
}

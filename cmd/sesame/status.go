package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// statusGrant is one grant in `sesame status --json`.
type statusGrant struct {
	Addr      string  `json:"addr"`
	Proto     string  `json:"proto,omitempty"` // none for a forward grant
	Port      uint16  `json:"port,omitempty"`
	Forward   bool    `json:"forward,omitempty"` // a grant of every forward target of the door
	Door      string  `json:"door"`
	State     string  `json:"state"` // pending, open or manual
	ExpiresIn float64 `json:"expires_in_s"`
	Timeout   float64 `json:"timeout_s,omitempty"`
	// Origin and Record name the member and record of a fleet grant
	// (its comment "fleet:DOOR:ORIGIN:ID").
	Origin string `json:"origin,omitempty"`
	Record string `json:"record,omitempty"`
}

// fleetOrigin returns the origin member and record id prefix of a fleet
// grant's comment, or "", "" for a local grant.
func fleetOrigin(comment string) (origin, record string) {
	rest, ok := strings.CutPrefix(comment, "fleet:")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return "", ""
	}
	return parts[1], parts[2]
}

func statusCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [-c FILE] [--table NAME] [--json]")
	path := fs.configFlag("config `file` (for the table name)")
	table := fs.String("table", "", "nftables table `name` (default: from the config, else sesame)")
	asJSON := fs.boolFlag("json", "print JSON")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	name := *table
	var doors []statusDoor
	var fleetSt *fleetStatus
	if p, diags := policy.Load(*path); diags.HasErrors() {
		if name == "" {
			name = policy.DefaultTable
			fmt.Fprintf(stderr, "sesame status: %s does not load (%v); reading table %q\n", *path, firstLine(diags.Error()), name)
		}
	} else {
		doors = doorsOf(p)
		fleetSt = readFleetStatus(p)
		if name == "" {
			name = p.Table
		}
	}
	t, err := nft.New(name)
	if err != nil {
		return err
	}
	defer t.Close()
	els, err := t.List()
	if errors.Is(err, nft.ErrNoTable) {
		return fmt.Errorf("table inet %s does not exist: sesame run has not set it up", name)
	}
	if err != nil {
		return explainStatus(err)
	}
	slices.SortFunc(els, func(a, b nft.Element) int {
		return cmp.Or(a.Addr.Compare(b.Addr), boolCmp(a.Kind.Forward(), b.Kind.Forward()), a.Port.Compare(b.Port), strings.Compare(a.Door, b.Door), cmp.Compare(a.Kind, b.Kind))
	})
	if *asJSON {
		out := struct {
			Table  string        `json:"table"`
			Doors  []statusDoor  `json:"doors"`
			Fleet  *fleetStatus  `json:"fleet,omitempty"`
			Grants []statusGrant `json:"grants"`
		}{Table: name, Doors: doors, Fleet: fleetSt, Grants: []statusGrant{}}
		for _, e := range els {
			g := statusGrant{
				Addr: e.Addr.String(), Proto: e.Port.Proto.String(), Port: e.Port.Port,
				Door: e.Door, State: e.Kind.String(), ExpiresIn: e.Expires.Seconds(), Timeout: e.Timeout.Seconds(),
			}
			if e.Kind.Forward() {
				g.Proto, g.Port, g.Forward = "", 0, true
			}
			g.Origin, g.Record = fleetOrigin(e.Comment)
			out.Grants = append(out.Grants, g)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	writeDoors(stdout, *path, doors)
	writeFleet(stdout, fleetSt, time.Now())
	fmt.Fprintf(stdout, "table inet %s: %d grant(s)\n", name, len(els))
	if len(els) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPORT\tDOOR\tSTATE\tLEFT\tORIGIN")
	for _, e := range els {
		port := e.Port.String()
		if e.Kind.Forward() {
			port = "forward" // every forward target of the door
		}
		origin := "local"
		if o, id := fleetOrigin(e.Comment); o != "" {
			origin = "fleet " + o + " " + id
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Addr, port, e.Door, e.Kind, e.Expires.Round(100*time.Millisecond), origin)
	}
	return tw.Flush()
}

func explainStatus(err error) error {
	if e := explainPerm(err); e != nil {
		return e
	}
	return err
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// boolCmp orders false before true.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sesame-knock/sesame/policy"
)

// statusDoor is one door of the config in `sesame status`. The knock
// sequence is left out: status output ends up in tickets and chats.
type statusDoor struct {
	Name    string  `json:"name"`
	Open    string  `json:"open"`
	Forward string  `json:"forward,omitempty"`
	OpenFor float64 `json:"open_for_s"`
	Steps   int     `json:"steps"`
}

func doorsOf(p *policy.Policy) []statusDoor {
	out := make([]statusDoor, 0, len(p.Doors))
	for _, d := range p.Doors {
		out = append(out, statusDoor{Name: d.Name, Open: policy.FormatPorts(d.Open), Forward: policy.FormatTargets(d.Forward), OpenFor: d.OpenFor.Seconds(), Steps: d.Steps()})
	}
	return out
}

func writeDoors(w io.Writer, path string, doors []statusDoor) {
	if doors == nil {
		return
	}
	fmt.Fprintf(w, "config %s: %d door(s)\n", path, len(doors))
	if len(doors) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOOR\tOPENS\tFOR\tSTEPS")
	for _, d := range doors {
		opens := d.Open
		if d.Forward != "" {
			opens = strings.TrimSpace(opens + " forward " + d.Forward)
		}
		fmt.Fprintf(tw, "%s\t%s\t%gs\t%d\n", d.Name, opens, d.OpenFor, d.Steps)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

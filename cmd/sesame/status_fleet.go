package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/sesame-knock/sesame/daemon"
	"github.com/sesame-knock/sesame/policy"
)

// fleetStatus is the fleet part of `sesame status`: what `sesame run`
// last wrote (daemon.FleetStatus), or why there is nothing to show.
type fleetStatus struct {
	daemon.FleetStatus
	// Stale says the status was written more than staleAfter ago (or
	// never): the daemon is not running, so the link state is unknown.
	Stale bool   `json:"stale,omitempty"`
	Error string `json:"error,omitempty"`
}

// staleAfter is how old the status file may be before status says the
// daemon does not keep it up to date (it writes it every second).
const staleAfter = 5 * time.Second

// readFleetStatus returns the fleet status of p, or nil without a fleet
// block.
func readFleetStatus(p *policy.Policy) *fleetStatus {
	if p.Fleet == nil {
		return nil
	}
	st, err := daemon.ReadFleetStatus(p.StateDir)
	out := &fleetStatus{FleetStatus: st}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out.Stale, out.Error = true, "sesame run has not written a fleet status (is it running?)"
	case err != nil:
		out.Stale, out.Error = true, err.Error()
	default:
		out.Stale = time.Since(st.Updated) > staleAfter
	}
	return out
}

// writeFleet prints the fleet link's state, e.g.
//
//	fleet prod, member web-1, groups web: connected to nats://192.0.2.10:4222 for 2h3m
//	  last record 12s ago (lag 3ms); catch-ups 2, last 1h ago; published 4, failed 0
//	  applied 17, refused 2, dropped 0
func writeFleet(w io.Writer, st *fleetStatus, now time.Time) {
	if st == nil {
		return
	}
	if st.Error != "" {
		fmt.Fprintf(w, "fleet: unknown: %s\n", st.Error)
		return
	}
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	}
	link := "DOWN"
	if st.Link.Connected {
		link = "connected to " + st.Link.Server
	}
	if !st.Link.Since.IsZero() {
		link += " since " + ago(st.Link.Since)
	}
	if st.Stale {
		link = "unknown: the status was written " + ago(st.Updated) + " (is sesame run running?); last seen " + link
	}
	fmt.Fprintf(w, "fleet %s, member %s, groups %v: %s\n", st.Fleet, st.Member, st.Groups, link)
	if st.Link.CatchingUp {
		fmt.Fprintf(w, "  catching up on live records\n")
	}
	fmt.Fprintf(w, "  last record %s (lag %s); catch-ups %d, last %s; published %d, failed %d\n",
		ago(st.Link.LastRecord), secs(st.Link.LastLag), st.Link.CatchUps, ago(st.Link.LastCatchUp), st.Link.Published, st.Link.Failed)
	fmt.Fprintf(w, "  applied %d (last %s, %s after issue), refused %d, dropped %d\n",
		st.Applied, ago(st.LastApplied), secs(st.LastLag), st.Refused, st.Dropped)
	if st.ClockUnsynced {
		fmt.Fprintf(w, "  CLOCK UNSYNCHRONISED: no fleet record is applied (check NTP: timedatectl)\n")
	}
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

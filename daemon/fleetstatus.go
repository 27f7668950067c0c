package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sesame-knock/sesame/internal/atomicfile"
	"github.com/sesame-knock/sesame/logevent"
)

// FleetStatusFile is the file in state_dir where `sesame run` writes the
// fleet link's state every second, for `sesame status`.
const FleetStatusFile = "fleet-status.json"

// FleetLinkStatus is what the fleet link reports of itself.
type FleetLinkStatus struct {
	Connected   bool      `json:"connected"`
	Server      string    `json:"server,omitempty"`       // the server it is connected to
	Since       time.Time `json:"since,omitzero"`         // connected or disconnected since
	LastRecord  time.Time `json:"last_record,omitzero"`   // the last record delivered
	LastLag     float64   `json:"last_lag_s,omitempty"`   // its delay from the stream to this host
	CatchingUp  bool      `json:"catching_up,omitempty"`  // a catch-up after (re)connect is under way
	CatchUps    int       `json:"catch_ups"`              // catch-ups done
	LastCatchUp time.Time `json:"last_catch_up,omitzero"` // when the last one ended
	Published   uint64    `json:"published"`              // records the servers acknowledged
	Failed      uint64    `json:"publish_failed"`         // records given up at not_after - 1s
}

// FleetStatus is the content of FleetStatusFile.
type FleetStatus struct {
	Updated time.Time       `json:"updated"`
	Fleet   string          `json:"fleet"`
	Member  string          `json:"member"`
	Groups  []string        `json:"groups"`
	Link    FleetLinkStatus `json:"link"`
	// Applied and Refused count records of other members since start;
	// LastApplied is when the last one landed and LastLag its delay from
	// issued_at.
	Applied       uint64    `json:"applied"`
	Refused       uint64    `json:"refused"`
	Dropped       uint64    `json:"dropped"`
	LastApplied   time.Time `json:"last_applied,omitzero"`
	LastLag       float64   `json:"last_apply_lag_s,omitempty"`
	ClockUnsynced bool      `json:"clock_unsynced,omitempty"`
}

// ReadFleetStatus reads the status `sesame run` wrote in stateDir.
func ReadFleetStatus(stateDir string) (FleetStatus, error) {
	var st FleetStatus
	b, err := os.ReadFile(filepath.Join(stateDir, FleetStatusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(stateDir, FleetStatusFile), err)
	}
	return st, nil
}

// writeStatus writes the fleet status to stateDir every second until ctx
// ends, and once more at the end (disconnected).
func (f *fleetState) writeStatus(ctx context.Context, stateDir string, base FleetStatus, link func() FleetLinkStatus) {
	path := filepath.Join(stateDir, FleetStatusFile)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var failing bool
	for {
		st := base
		st.Updated = f.now()
		if link != nil {
			st.Link = link()
		}
		st.Applied = f.applied.Load()
		st.Refused = f.refusedN.Load()
		st.Dropped = f.dropped.Load()
		if ms := f.last.Load(); ms != 0 {
			st.LastApplied = time.UnixMilli(ms)
			st.LastLag = time.Duration(f.lastLag.Load()).Seconds()
		}
		st.ClockUnsynced = f.unsyncedNow.Load()
		done := ctx.Err() != nil
		if done {
			st.Link.Connected = false
		}
		b, _ := json.Marshal(st)
		// state_dir may not exist yet (a systemd StateDirectory= does; a
		// custom one is made by the first state written, as TOTP burns).
		err := os.MkdirAll(stateDir, 0o700)
		if err == nil {
			err = atomicfile.Replace(path, b, 0o644) // a snapshot: no fsync each second
		}
		if err != nil && !failing {
			f.log.Warn(logevent.FleetStatusNotSaved, "file", path, "err", err)
			failing = true
		} else if err == nil {
			failing = false
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

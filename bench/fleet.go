package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/logevent"
)

// fleetLatency measures what fleet mode costs the local grant (issue 14:
// publishing is off the hot path, so the knock-to-grant latency must not
// change). The same door (confirm = false, which a static door with
// fleet_groups needs) is measured twice on a fresh topology: without a
// fleet block, then with one whose door publishes every open to a real
// nats-server in the server's namespace. Runs alternate knock by knock
// between IPv4 and IPv6 as the local latency run does; then the status
// file says how many records the server acknowledged.
func fleetLatency(opts Options, res *Result, logf func(string, ...any)) error {
	dir, err := os.MkdirTemp("", "sesame-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t, err := newTopo()
	if err != nil {
		return err
	}
	defer t.Delete()
	s, err := listenSink(t.srv, guarded)
	if err != nil {
		return err
	}
	defer s.Close()

	nats, err := startProc("nats-server", t.srv, opts.NATS, "-js", "-a", "127.0.0.1", "-p", "4222", "-sd", filepath.Join(dir, "js"))
	if err != nil {
		return err
	}
	defer nats.stop()
	if err := nats.waitFor(10*time.Second, "nats-server ready", func() bool { return strings.Contains(nats.out.String(), "Server is ready") }); err != nil {
		return err
	}
	priv, err := fleet.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	members := fmt.Sprintf("member \"bench\" {\n  key = %q\n  may_grant = { bench = [\"bench\"] }\n}\n", fleet.FormatKey(priv.Public().(ed25519.PublicKey)))
	state := filepath.Join(dir, "state")
	for _, f := range []struct {
		name, text string
		mode       os.FileMode
	}{
		{"bench.key", fleet.FormatPrivateKey(priv), 0o600},
		{"members.hcl", members, 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), f.mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		return err
	}
	door := fmt.Sprintf(`interfaces = [%q]
table      = "sesame"
closed     = "reject"
state_dir  = %q

door "bench" {
  sequence    = [%s]
  seq_timeout = "5s"
  open        = ["%d/tcp"]
  open_for    = "30s"
  confirm     = false
%%s}
`, ifServer, state, sequenceHCL(knockPorts), guarded)
	block := fmt.Sprintf(`
fleet {
  name    = "bench"
  member  = "bench"
  key     = %q
  members = %q
  groups  = ["bench"]
  nats {
    servers = ["nats://127.0.0.1:4222"]
  }
}
`, filepath.Join(dir, "bench.key"), filepath.Join(dir, "members.hcl"))
	for _, run := range []struct {
		fleet    bool
		v4, v6   *[]time.Duration
		internal *[]time.Duration
	}{
		{false, &res.NoFleetLatency4, &res.NoFleetLatency6, &res.NoFleetInternal},
		{true, &res.FleetLatency4, &res.FleetLatency6, &res.FleetInternal},
	} {
		cfg := fmt.Sprintf(door, "")
		if run.fleet {
			cfg = fmt.Sprintf(door, "  fleet_groups = [\"bench\"]\n") + block
		}
		// Debug level: the grant-applied lines give the daemon's own share.
		p, err := startSesame(t.srv, opts.Sesame, dir, cfg, "debug")
		if err != nil {
			return err
		}
		if run.fleet {
			if err := p.waitEvent(10*time.Second, logevent.FleetConnected); err != nil {
				p.stop()
				return err
			}
		}
		logf("fleet latency (fleet block: %v): %d knocks per family", run.fleet, opts.Knocks)
		var fail int
		*run.v4, *run.v6, fail, err = latencyRun(t.cli, opts.Knocks, netip.Addr{}, netip.Addr{}, func() error {
			// confirm = false: no pending sets.
			_, err := t.srv.Run("nft", "flush set inet sesame open4_bench; flush set inet sesame open6_bench")
			return err
		})
		res.FleetLatencyFail += fail
		if err != nil {
			p.stop()
			return err
		}
		if run.fleet {
			// Every open publishes one record; wait (bounded) for the
			// server's acks to show in the status file.
			want := uint64(2*opts.Knocks + 2)
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				if n, err := fleetPublished(state); err == nil {
					res.FleetPublished = n
					if n >= want {
						break
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			res.FleetOpens = int(want)
			logf("fleet: %d of %d opens published and acknowledged", res.FleetPublished, want)
		}
		if in := (sesameKind{}).Internal(p); len(in) > 2 {
			*run.internal = in[2:] // not the two warm-up knocks
		}
		p.stop()
	}
	return nil
}

// fleetPublished reads how many records the server acknowledged from the
// status file sesame run writes in its state_dir (daemon.FleetStatus;
// read here without importing the daemon and its dependencies).
func fleetPublished(stateDir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "fleet-status.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		Link struct {
			Published uint64 `json:"published"`
		} `json:"link"`
	}
	err = json.Unmarshal(b, &st)
	return st.Link.Published, err
}

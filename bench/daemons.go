package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/bench/internal/procstat"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/syncbuf"
	"github.com/sesame-knock/sesame/logevent"
)

// proc is a daemon process started with `ip netns exec`, which execs the
// program: the pid is the daemon's own.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	// logFile is where the daemon logs when not to its output ("": none).
	logFile string
}

// logTail returns the last lines the daemon logged, for error reports.
func (p *proc) logTail() string {
	s := p.out.String()
	if p.logFile != "" {
		b, _ := os.ReadFile(p.logFile)
		s += string(b)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 20 {
		lines = append(lines[:8:8], append([]string{"..."}, lines[len(lines)-12:]...)...)
	}
	return strings.Join(lines, "\n")
}

func startProc(name string, ns *nstest.NS, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = ns.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitFor polls cond every 10ms for up to timeout; it fails early if the
// process exits.
func (p *proc) waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before %s:\n%s", p.name, what, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s within %s:\n%s", p.name, what, timeout, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// stop sends SIGTERM and waits up to 5s, then kills.
func (p *proc) stop() {
	nstest.Terminate(p.cmd.Process, p.done, 5*time.Second)
}

// usage is a snapshot of a process's CPU time (with its reaped children:
// knockd's shells and nft) and memory.
type usage = procstat.Usage

func (p *proc) usage() (usage, error) {
	u, err := procstat.Read(p.cmd.Process.Pid, true)
	if err != nil {
		return u, fmt.Errorf("%s: %w", p.name, err)
	}
	return u, nil
}

// daemonKind says how to run one of the two daemons under test.
type daemonKind interface {
	Name() string
	// Start configures the server namespace (its nftables table) and
	// starts the daemon on iface, guarding port behind the knock ports.
	Start(ns *nstest.NS, dir, iface string, knock []uint16, guarded uint16) (*proc, error)
	// FlushGrants removes every grant, so that the next knock is measured
	// from a closed port.
	FlushGrants(ns *nstest.NS) error
	// Drops returns the packets the capture socket saw and the ones the
	// kernel dropped, after the daemon stopped; ok is false when the
	// daemon does not say.
	Drops(p *proc) (packets, drops int64, ok bool)
	// Opens counts the opens the daemon logged for the legitimate client
	// (client4, client6). Spoofed flood sources complete sequences too:
	// a /15 recurs every second or so at these rates, with random knock
	// ports, and some land in order.
	Opens(p *proc) int
}

// legit reports whether src is the legitimate client.
func legit(src string) bool { return src == client4.String() || src == client6.String() }

// sesameKind runs `sesame run`; with debug set it logs at debug level,
// which adds its grant-applied lines (Internal).
type sesameKind struct {
	Bin   string
	debug bool
}

func (sesameKind) Name() string { return "sesame" }

func (k sesameKind) Start(ns *nstest.NS, dir, iface string, knock []uint16, guarded uint16) (*proc, error) {
	cfg := fmt.Sprintf(`interfaces = [%q]
table      = "sesame"
closed     = "reject"

door "bench" {
  sequence    = [%s]
  seq_timeout = "5s"
  open        = ["%d/tcp"]
  open_for    = "30s"
}
`, iface, sequenceHCL(knock), guarded)
	level := "info"
	if k.debug {
		level = "debug"
	}
	return startSesame(ns, k.Bin, dir, cfg, level)
}

// sequenceHCL returns ports as the elements of an HCL list of TCP steps:
// "7000/tcp", "8000/tcp", "9000/tcp".
func sequenceHCL(ports []uint16) string {
	seq := make([]string, len(ports))
	for i, p := range ports {
		seq[i] = strconv.Quote(fmt.Sprintf("%d/tcp", p))
	}
	return strings.Join(seq, ", ")
}

// startSesame writes cfg to dir/sesame.hcl, runs `sesame run` on it in
// ns, logging JSON at level, and waits (10 s) for its ready line.
func startSesame(ns *nstest.NS, bin, dir, cfg, level string) (*proc, error) {
	path := filepath.Join(dir, "sesame.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("sesame", ns, bin, "run", "-c", path, "--log-format", "json", "--log-level", level)
	if err != nil {
		return nil, err
	}
	if err := p.waitEvent(10*time.Second, logevent.Ready); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitEvent waits for a JSON log line with msg event.
func (p *proc) waitEvent(timeout time.Duration, event string) error {
	return p.waitFor(timeout, event+" line", func() bool { return strings.Contains(p.out.String(), `"msg":"`+event+`"`) })
}

// FlushGrants empties door bench's sets: its pending knocks and the grants
// their connects confirmed (each door has its own sets).
func (sesameKind) FlushGrants(ns *nstest.NS) error {
	var cmds []string
	for _, set := range []string{"pend4", "pend6", "open4", "open6"} {
		cmds = append(cmds, "flush set inet sesame "+set+"_bench")
	}
	_, err := ns.Run("nft", strings.Join(cmds, "; "))
	return err
}

// Internal returns the daemon's own share of each grant's latency, from
// its grant-applied lines (debug level): capture reading the last knock to
// the nftables transaction returning.
func (sesameKind) Internal(p *proc) []time.Duration {
	var ds []time.Duration
	for line := range strings.SplitSeq(p.out.String(), "\n") {
		var e struct {
			Msg string `json:"msg"`
			US  int64  `json:"us"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == logevent.GrantApplied {
			ds = append(ds, time.Duration(e.US)*time.Microsecond)
		}
	}
	return ds
}

func (sesameKind) Drops(p *proc) (int64, int64, bool) {
	type sock struct{ iface, socket string }
	last := map[sock][2]int64{}
	for line := range strings.SplitSeq(p.out.String(), "\n") {
		var e struct {
			Msg       string `json:"msg"`
			Interface string `json:"interface"`
			Socket    string `json:"socket"`
			Packets   int64  `json:"packets"`
			Drops     int64  `json:"drops"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Msg != logevent.CaptureStats {
			continue
		}
		// Each line is a running total of one socket (knock or SPA, per
		// interface); the daemon logs one per socket at exit.
		last[sock{e.Interface, e.Socket}] = [2]int64{e.Packets, e.Drops}
	}
	var packets, drops int64
	for _, v := range last {
		packets += v[0]
		drops += v[1]
	}
	return packets, drops, len(last) > 0
}

func (sesameKind) Opens(p *proc) int {
	n := 0
	for line := range strings.SplitSeq(p.out.String(), "\n") {
		var e struct {
			Msg string `json:"msg"`
			Src string `json:"src"`
		}
		// The open lines of a static door are rate-limited (20/s) under a
		// flood: this counts the lines, not the grants.
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == logevent.Open && legit(e.Src) {
			n++
		}
	}
	return n
}

// Command fleetsim is the fleet mode's scale benchmark (issue 14; package
// bench/fleetsim): M members, each the real fleet client with its own
// connection and key, against three real nats-server processes, at a few
// grant rates, with and without a delaying proxy. With -out DIR it writes
// DIR/perf-fleet.md and DIR/perf-fleet-latency.png. make fleetsim runs the
// whole matrix.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sesame-knock/sesame/bench/fleetsim"
)

func main() {
	server := flag.String("nats-server", "bin/nats-server", "the nats-server binary (make bin/nats-server)")
	matrix := flag.Bool("matrix", true, "run the matrix (false: only the restart test, e.g. -matrix=false -restart-members 1000)")
	members := flag.String("members", "100,500,1000", "member counts")
	rates := flag.String("rates", "1,10,100", "grants a second")
	delays := flag.String("delays", "0,5ms", "delay the proxy adds each way (0: members connect directly)")
	cellFor := flag.Duration("cell", 20*time.Second, "how long each rate publishes")
	maxGrants := flag.Int("max-grants", 600, "grants per cell at most")
	settle := flag.Duration("settle", 30*time.Second, "wait at most this long after a cell for every member to apply every grant")
	restartMembers := flag.Int("restart-members", 1000, "run the restart test, after the matrix, with this many members of its own and no delay (0: none)")
	restartRecords := flag.Int("restart-records", 1000, "live records before the restart")
	outage := flag.Int("outage-records", 20, "records published while every server is down")
	checkers := flag.Int("checkers", 100, "members of each phase that run the receiver's checks (0: all); the others only carry")
	budget := flag.Float64("verify-budget", 2000, "at most this many Ed25519 verifications a second per cell in phases with carriers (fewer checking members at high rates; 0: no cap)")
	fullCheck := flag.Bool("full-check", true, "add a phase with the most members, 10 grants/s and every member checking")
	logMembers := flag.Int("log-members", 0, "how many members' fleet links log to stderr")
	out := flag.String("out", "", "write perf-fleet.md and its plot to this directory")
	command := flag.String("command", "make fleetsim", "the command to name in perf-fleet.md")
	proxy := flag.String("proxy", "", "internal: run as the delaying proxy for these upstreams (comma-separated)")
	proxyDelay := flag.Duration("proxy-delay", 0, "internal: the proxy's delay")
	flag.Parse()
	if *proxy != "" {
		runProxy(strings.Split(*proxy, ","), *proxyDelay)
		return
	}
	o := fleetsim.Options{
		NATSServer: *server, CellFor: *cellFor, MaxGrants: *maxGrants, Settle: *settle,
		OpenFor:        30 * time.Second,
		RestartMembers: *restartMembers, RestartRecords: *restartRecords, OutageRecords: *outage,
		Proxy: childProxy, Log: os.Stderr, LogMembers: *logMembers,
		Checkers: *checkers, FullCheck: *fullCheck, VerifyBudget: *budget,
	}
	var err error
	if o.Members, err = ints(*members); err != nil {
		log.Fatal(err)
	}
	if !*matrix {
		o.Members, o.FullCheck = nil, false
	}
	if o.Rates, err = floats(*rates); err != nil {
		log.Fatal(err)
	}
	if o.Delays, err = durations(*delays); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "fleetsim-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	o.Dir = dir
	// On ^C the servers and the proxy die with this process (Pdeathsig);
	// only the scratch directory in $TMPDIR stays.
	res, err := fleetsim.Run(o)
	if res != nil {
		fmt.Print(fleetsim.Markdown(o, res, *command))
		if *out != "" {
			if werr := fleetsim.WriteDocs(*out, o, res, *command); werr != nil {
				log.Fatal(werr)
			}
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

// childProxy runs the delaying proxy as a child process (this binary with
// -proxy), so that its CPU is not counted as the members'.
func childProxy(up []string, d time.Duration) ([]string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, nil, err
	}
	cmd := exec.Command(self, "-proxy", strings.Join(up, ","), "-proxy-delay", d.String())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, 0, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, 0, nil, fmt.Errorf("proxy: %w", err)
	}
	return strings.Split(strings.TrimSpace(line), ","), cmd.Process.Pid, stop, nil
}

// runProxy serves until SIGTERM, after printing its addresses on one line.
func runProxy(up []string, d time.Duration) {
	if _, err := fleetsim.RaiseNoFile(); err != nil {
		log.Fatal(err)
	}
	p, err := fleetsim.NewProxy(up, d)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(p.Addrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	p.Close()
}

func ints(s string) ([]int, error) {
	var r []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		r = append(r, n)
	}
	return r, nil
}

func floats(s string) ([]float64, error) {
	var r []float64
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		r = append(r, n)
	}
	return r, nil
}

func durations(s string) ([]time.Duration, error) {
	var r []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "0" {
			r = append(r, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad delay %q", f)
		}
		r = append(r, d)
	}
	return r, nil
}

package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdleCost is a measurement, not a check: with SESAME_IDLE set to a
// duration it runs the daemon idle that long on the usual two-interface
// topology and logs the CPU time it used (utime+stime from /proc/PID/stat)
// and its VmRSS. Compare two binaries with SESAME_BIN.
//
//	SESAME_IDLE=60s SESAME_REQUIRE_ROOT=1 go test -count=1 -run TestIdleCost -v ./e2e/
func TestIdleCost(t *testing.T) {
	idle, err := time.ParseDuration(os.Getenv("SESAME_IDLE"))
	if err != nil {
		t.Skip("a measurement: set SESAME_IDLE to a duration (e.g. 60s) to run it")
	}
	e := setup(t, config("reject", sshDoor("60s", "5s")))
	pid := e.D.cmd.Process.Pid
	cpu0 := cpuTicks(t, pid)
	time.Sleep(idle)
	cpu1 := cpuTicks(t, pid)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	rss := ""
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	used := time.Duration(cpu1-cpu0) * 10 * time.Millisecond
	t.Logf("idle %s: cpu %s (%.3f%% of one core), VmRSS %s", idle, used, 100*used.Seconds()/idle.Seconds(), rss)
}

// cpuTicks returns utime+stime of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which ends with the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, err1 := strconv.ParseUint(f[11], 10, 64) // field 14, utime
	s, err2 := strconv.ParseUint(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		t.Fatalf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return u + s
}

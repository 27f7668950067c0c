// Package procstat reads a process's CPU time and memory from /proc, and
// takes percentiles of latencies: what the benchmark and fleetsim both
// report.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage is a snapshot of a process's CPU time and memory.
type Usage struct {
	CPU        time.Duration // user+system (with Read's children: also of reaped children)
	RSSKiB     int64         // VmRSS
	PeakRSSKiB int64         // VmHWM
}

// clkTck is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clkTck = 100

// Read returns pid's usage; with children, the CPU time includes that of
// the children it reaped (knockd's shells and nft).
func Read(pid int, children bool) (Usage, error) {
	var u Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return u, errors.New("malformed /proc stat")
	}
	// After the command: state is field 3; utime, stime, cutime and
	// cstime are fields 14-17.
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return u, fmt.Errorf("short /proc stat %q", s)
	}
	last := 13
	if children {
		last = 15
	}
	var ticks int64
	for _, v := range f[11:last] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	u.CPU = time.Duration(ticks) * time.Second / clkTck
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.RSSKiB = n
		case "VmHWM":
			u.PeakRSSKiB = n
		}
	}
	return u, nil
}

// Percentile returns the p-th percentile (0..100) of ds by nearest rank,
// or 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

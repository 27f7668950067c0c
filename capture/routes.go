package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Route flags from linux/route.h.
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// DefaultInterfaces returns the interfaces that carry a default route,
// IPv4 (/proc/self/net/route) or IPv6 (/proc/self/net/ipv6_route; not
// /proc/net, which systemd's ProcSubset=pid hides), sorted and
// without duplicates. It is an error if there is none.
func DefaultInterfaces() ([]string, error) {
	var out []string
	for _, src := range []struct {
		path  string
		parse func(io.Reader) ([]string, error)
	}{
		{"/proc/self/net/route", parseRoute4},
		{"/proc/self/net/ipv6_route", parseRoute6},
	} {
		f, err := os.Open(src.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // e.g. IPv6 disabled
		}
		if err != nil {
			return nil, fmt.Errorf("read routes: %w", err)
		}
		names, err := src.parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", src.path, err)
		}
		out = append(out, names...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("no interface carries a default route: set interfaces in the config")
	}
	return out, nil
}

// parseRoute4 returns the interfaces of the up IPv4 default routes in the
// text of /proc/net/route:
//
//	Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
//	eth0  00000000    0102A8C0 0003 0      0   100    00000000 0 0 0
func parseRoute4(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if line == 0 || len(f) == 0 {
			continue // header
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 8", line+1, len(f))
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: flags %q: %w", line+1, f[3], err)
		}
		if f[1] == "00000000" && f[7] == "00000000" && flags&rtfUp != 0 && flags&rtfReject == 0 {
			out = append(out, f[0])
		}
	}
	return out, sc.Err()
}

// parseRoute6 returns the interfaces of the up IPv6 default routes in the
// text of /proc/net/ipv6_route (no header; dest, prefix length, source,
// prefix length, next hop, metric, refcnt, use, flags, iface), leaving out
// rejecting routes and lo.
func parseRoute6(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("line %d: %d fields, want 10", line, len(f))
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: flags %q: %w", line, f[8], err)
		}
		if f[0] == strings.Repeat("0", 32) && f[1] == "00" && flags&rtfUp != 0 && flags&rtfReject == 0 && f[9] != "lo" {
			out = append(out, f[9])
		}
	}
	return out, sc.Err()
}

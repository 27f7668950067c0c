package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// --wait bounds.
const (
	defaultWaitFor = 5 * time.Second
	maxWaitFor     = 5 * time.Minute
	waitAttempt    = 500 * time.Millisecond // one connect attempt
)

// setWait applies --wait and --wait-for.
func (o *knockOpts) setWait(name, val string) error {
	switch name {
	case "wait":
		port, proto, _ := strings.Cut(val, "/")
		if proto == "" {
			port, proto, _ = strings.Cut(val, ":")
		}
		if proto != "" {
			if p, err := policy.ParseProto(proto); err != nil || p != policy.TCP {
				return usageErrorf("bad --wait %q: only a tcp port can confirm access (a connect that succeeds)", val)
			}
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return usageErrorf("bad --wait %q: want a port from 1 to 65535, optionally /tcp", val)
		}
		o.Wait = uint16(n)
	case "wait-for":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 || d > maxWaitFor {
			return usageErrorf("bad --wait-for %q: want a duration such as 5s, at most %s", val, maxWaitFor)
		}
		o.WaitFor = d
	}
	return nil
}

// waitAccess retries a TCP connect to addr:port until it succeeds or for
// lasts out, and reports which: exit status 0 (granted) or 1.
func waitAccess(addr netip.Addr, port uint16, wait time.Duration, stdout, stderr io.Writer) int {
	target := netip.AddrPortFrom(addr, port)
	deadline := time.Now().Add(wait)
	var lastErr error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		c, err := net.DialTimeout("tcp", target.String(), min(waitAttempt, left))
		if err == nil {
			c.Close()
			fmt.Fprintf(stdout, "access granted: tcp %s is open\n", target)
			return 0
		}
		lastErr = err
		// A refused connect comes back at once: pace the retries.
		time.Sleep(min(100*time.Millisecond, max(time.Until(deadline), 0)))
	}
	fmt.Fprintf(stderr, "sesame knock: no access to tcp %s after %s: %v\n", target, wait, lastErr)
	return 1
}

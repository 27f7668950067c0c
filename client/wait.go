package client

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Bounds of WaitOpen.
const (
	DefaultWait = 5 * time.Second
	MaxWait     = 5 * time.Minute
	waitAttempt = 500 * time.Millisecond // one connect attempt
	waitPace    = 100 * time.Millisecond // between attempts
)

// WaitOpen retries a TCP connect to target until one succeeds (nil: access
// was granted) or wait has passed (an error with the last failure).
func WaitOpen(target netip.AddrPort, wait time.Duration) error {
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
			return nil
		}
		lastErr = err
		// A refused connect comes back at once: pace the retries.
		time.Sleep(min(waitPace, max(time.Until(deadline), 0)))
	}
	return fmt.Errorf("no access to tcp %s after %s: %v", target, wait, lastErr)
}

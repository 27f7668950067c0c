package daemon

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sesame-knock/sesame/capture"
)

// logStats writes one capture-stats line per interface: packets that passed
// the socket's filter and, of those, the ones the kernel dropped because
// the socket buffer was full (PACKET_STATISTICS, summed since the socket
// was opened).
func (c *captures) logStats() {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.conns))
	for n := range c.conns {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		r := c.conns[n]
		if r.conn == nil {
			continue // gone with its interface, waiting for it (heal.go)
		}
		s, err := r.conn.Stats()
		if errors.Is(err, capture.ErrClosed) {
			continue
		}
		if err != nil {
			c.log.Warn("capture-stats failed", "interface", n, "err", err)
			continue
		}
		c.log.Info("capture-stats", "interface", n, "packets", s.Packets, "drops", s.Drops)
	}
}

// statsOnSignal logs the capture counters on every SIGUSR1 until ctx ends.
func (c *captures) statsOnSignal(ctx context.Context) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(usr1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				c.logStats()
			}
		}
	}()
}

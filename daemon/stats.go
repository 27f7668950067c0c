package daemon

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/logevent"
)

// logStats writes one capture-stats line per socket: packets that passed
// the socket's filter and, of those, the ones the kernel dropped because
// the ring or socket buffer was full (PACKET_STATISTICS) and the ones cut
// short (capture.Stats.Truncated), summed since the socket was opened.
func (c *captures) logStats() {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.ifaces))
	for n := range c.ifaces {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := c.ifaces[n]
		for _, r := range []*reader{f.knock, f.spa} {
			if r == nil {
				continue // gone with its interface, waiting for it (heal.go)
			}
			s, err := c.account(n, r)
			if errors.Is(err, capture.ErrClosed) {
				continue
			}
			if err != nil {
				c.log.Warn(logevent.CaptureStatsFailed, "interface", n, "socket", r.socket, "err", err)
				continue
			}
			c.log.Info(logevent.CaptureStats, "interface", n, "socket", r.socket, "packets", s.Packets, "drops", s.Drops, "truncated", s.Truncated)
		}
	}
}

// account reads a socket's counters and adds what is new since the last
// read to sesame_capture_drops_total. c.mu is held.
func (c *captures) account(name string, r *reader) (capture.Stats, error) {
	s, err := r.conn.Stats()
	if err != nil {
		return s, err
	}
	if d := s.Drops - r.seen.Drops; d > 0 {
		c.met.captureDrops.WithLabelValues(name, r.socket, dropFull).Add(float64(d))
	}
	if d := s.Truncated - r.seen.Truncated; d > 0 {
		c.met.captureDrops.WithLabelValues(name, r.socket, dropTruncated).Add(float64(d))
	}
	r.seen = s
	return s, nil
}

// Reasons of sesame_capture_drops_total.
const (
	dropFull      = "full"      // the ring or the socket buffer was full
	dropTruncated = "truncated" // cut shorter than the filter asked
)

// captureCollector brings sesame_capture_drops_total up to date from every
// socket's counters when the metrics are scraped.
type captureCollector struct{ c *captures }

func (cc captureCollector) Describe(ch chan<- *prometheus.Desc) { cc.c.met.captureDrops.Describe(ch) }

func (cc captureCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.c
	c.mu.Lock()
	for n, f := range c.ifaces {
		for _, r := range []*reader{f.knock, f.spa} {
			if r != nil {
				_, _ = c.account(n, r)
			}
		}
	}
	c.mu.Unlock()
	c.met.captureDrops.Collect(ch)
}

// statsOnSignal logs the capture counters on every SIGUSR1 until ctx ends,
// in a goroutine of bg.
func (c *captures) statsOnSignal(ctx context.Context, bg *sync.WaitGroup) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	bg.Go(func() {
		defer signal.Stop(usr1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				c.logStats()
			}
		}
	})
}

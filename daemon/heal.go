package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// The healer acts on events: the nftables monitor for the table, rtnetlink
// link events for the capture sockets. The backstops catch what an event
// source missed; a failed restore or reopen is retried after retryEvery.
// Without an event source (its subscription failed), its side is polled
// every pollEvery, as before events.
const (
	tableBackstop = 10 * time.Second
	linkBackstop  = 30 * time.Second
	retryEvery    = 500 * time.Millisecond
	pollEvery     = 500 * time.Millisecond
)

// healer puts back what others change under the daemon: the table (an
// admin's `nft flush ruleset`, a reload of nftables.service or firewalld)
// and the capture sockets (an interface deleted and created again gets a
// new index, so a socket bound to the old one hears nothing). It shares mu
// with the reloader, which changes the same table, policy and sockets.
type healer struct {
	log   *slog.Logger
	mu    *sync.Mutex
	table verifier
	r     *reloader
	met   *metrics
	// tableChanged and linksChanged are kicked (kick) by the event
	// watchers (watchTable, watchLinks) and by captures.restore.
	tableChanged, linksChanged chan struct{}
}

// verifier is what the healer needs of the nftables table.
type verifier interface {
	Verify() (nft.Drift, error)
	Ensure(p *policy.Policy) error
}

var _ verifier = (*nft.Table)(nil)

// newHealer returns a healer whose event channels work: the watchers can
// start before the table and the reloader exist (set them before run).
func newHealer(log *slog.Logger, met *metrics) *healer {
	return &healer{log: log, met: met, tableChanged: make(chan struct{}, 1), linksChanged: make(chan struct{}, 1)}
}

// kick wakes whoever waits on ch, without blocking: a kick already
// pending stands for this one too.
func kick(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run heals the table after a table event, the capture sockets after a
// link event, each on its backstop, and whatever failed after retryEvery,
// until ctx ends.
func (h *healer) run(ctx context.Context) {
	tt := time.NewTicker(tableBackstop)
	defer tt.Stop()
	lt := time.NewTicker(linkBackstop)
	defer lt.Stop()
	var (
		retry                    <-chan time.Time
		tableFailed, linksFailed bool
	)
	for {
		var table, links bool
		select {
		case <-ctx.Done():
			return
		case <-h.tableChanged:
			table = true
		case <-tt.C:
			table = true
		case <-h.linksChanged:
			links = true
		case <-lt.C:
			links = true
		case <-retry:
			table, links = tableFailed, linksFailed
		}
		h.mu.Lock()
		if table {
			tableFailed = !h.healTable()
		}
		if links {
			linksFailed = !h.r.caps.rebind(ctx)
		}
		h.mu.Unlock()
		retry = nil
		if tableFailed || linksFailed {
			retry = time.After(retryEvery)
		}
	}
}

// watchTable kicks the healer on every change to the table that the
// nftables monitor reports, until ctx ends; without a monitor, every
// pollEvery.
func (h *healer) watchTable(ctx context.Context, w func(context.Context, func()) error) {
	err := w(ctx, func() { kick(h.tableChanged) })
	if ctx.Err() != nil {
		return
	}
	h.log.Warn(logevent.TablePolling, "err", err, "every", pollEvery.String())
	poll(ctx, pollEvery, h.tableChanged)
}

// watchLinks keeps local current from rtnetlink events and kicks the
// healer on every link event, until ctx ends; without events, it polls
// both every pollEvery.
func (h *healer) watchLinks(ctx context.Context, local *capture.LocalAddrs) {
	err := local.Watch(ctx, linkBackstop, func() { kick(h.linksChanged) })
	if ctx.Err() != nil {
		return
	}
	h.log.Warn(logevent.LinkPolling, "err", err, "every", pollEvery.String())
	_ = local.Poll(ctx, pollEvery, func() { kick(h.linksChanged) })
}

// poll kicks ch every interval until ctx ends.
func poll(ctx context.Context, interval time.Duration, ch chan<- struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			kick(ch)
		}
	}
}

// healTable restores the table if it changed under sesame. It reports
// false if the check or the restore failed (the healer retries).
func (h *healer) healTable() bool {
	d, err := h.table.Verify()
	if err != nil {
		h.log.Error(logevent.TableCheckFailed, "table", h.r.cur.Table, "err", err)
		return false
	}
	if d.What == "" {
		return true
	}
	attrs := []any{"table", h.r.cur.Table, "what", d.What}
	if d.GrantsLost {
		attrs = append(attrs, "grants", "lost with the table: clients must knock again")
	}
	h.log.Warn(logevent.TableChanged, attrs...)
	if err := h.table.Ensure(h.r.cur); err != nil {
		h.log.Error(logevent.TableRestoreFailed, "table", h.r.cur.Table, "err", explainNft(err), "note", "retrying")
		return false
	}
	h.met.restores.Inc()
	h.log.Info(logevent.TableRestored, "table", h.r.cur.Table)
	return true
}

// rebind reopens capture on every interface whose index changed (deleted
// and created again), or whose sockets are missing (a failed reopen or
// filter restore), and closes it on interfaces that are gone, until they
// come back. The caller holds the reload lock. It reports false if a
// reopen failed (the healer retries).
func (c *captures) rebind(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pol == nil {
		return true
	}
	ok := true
	withSPA := len(c.pol.SPAPorts()) > 0
	for name, f := range c.ifaces {
		ifi, err := c.lookup(name)
		if err != nil {
			if f.knock != nil {
				c.log.Warn(logevent.InterfaceGone, "interface", name)
				c.stopAll(name, f)
			}
			continue
		}
		if ifi.Flags&net.FlagUp == 0 && (f.knock == nil || f.index != ifi.Index) {
			// An interface created again but not up yet: its socket is
			// opened once it is (its link event comes then). Opened at
			// the creation event itself, the socket heard nothing about
			// half the time in TestCaptureRebinds (cause not found: a
			// daemon started with the link down hears it once up,
			// TestCaptureStartsDown).
			if f.knock != nil {
				c.stopAll(name, f)
			}
			if !f.down {
				f.down = true
				c.log.Warn(logevent.InterfaceDown, "interface", name)
			}
			continue
		}
		if f.knock != nil && f.index == ifi.Index && (f.spa != nil) == withSPA {
			if down := ifi.Flags&net.FlagUp == 0; down != f.down {
				f.down = down
				if down {
					c.log.Warn(logevent.InterfaceDown, "interface", name)
				} else {
					c.log.Info(logevent.InterfaceUp, "interface", name)
				}
			}
			continue
		}
		c.stopAll(name, f)
		nf, err := c.open(ctx, name, c.pol)
		if err != nil {
			if !f.failed {
				c.log.Error(logevent.CaptureReopenFailed, "interface", name, "err", err, "note", "retrying")
			}
			f.failed = true
			ok = false
			continue
		}
		c.ifaces[name] = nf
		_ = c.local.Refresh() // its addresses came back with it
		c.log.Warn(logevent.CaptureRebound, "interface", name, "index", nf.index)
	}
	return ok
}

// open opens capture on one interface with pol's filters and starts its
// readers: a knock reader, and an SPA reader if pol has SPA doors.
func (c *captures) open(ctx context.Context, name string, pol *policy.Policy) (*iface, error) {
	ifi, err := c.lookup(name)
	if err != nil {
		return nil, err
	}
	f := &iface{index: ifi.Index}
	if f.knock, err = c.start(ctx, name, pol, false); err != nil {
		return nil, err
	}
	if len(pol.SPAPorts()) > 0 {
		if f.spa, err = c.start(ctx, name, pol, true); err != nil {
			c.stopAll(name, f)
			return nil, err
		}
	}
	return f, nil
}

// start opens one socket (knock or SPA) and starts the goroutine that
// reads it, with a context of its own that stop cancels.
func (c *captures) start(ctx context.Context, name string, pol *policy.Policy, spa bool) (*reader, error) {
	conn, err := c.openConn(name, pol, spa)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &reader{conn: conn, socket: "knock", cancel: cancel, done: make(chan struct{})}
	run := c.read
	if spa {
		r.socket, run = "spa", c.readSPA
	}
	go func() {
		defer close(r.done)
		run(ctx, name, r)
	}()
	return r, nil
}

// stop ends a reader and waits for it: its context first, so that a
// goroutine waiting to hand hits to the loop lets go (the caller may be
// the loop itself, reloading, or the healer, which holds the lock the
// loop's reload waits for), then its socket, which ends a read. The
// socket's last counters go to the metrics first. c.mu is held.
func (c *captures) stop(name string, r *reader) {
	if r == nil {
		return
	}
	c.account(name, r)
	r.cancel()
	r.conn.Close()
	<-r.done
}

// stopAll stops both readers of f and forgets them.
func (c *captures) stopAll(name string, f *iface) {
	c.stop(name, f.knock)
	c.stop(name, f.spa)
	f.knock, f.spa = nil, nil
}

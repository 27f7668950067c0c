package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// healEvery is how often the healer compares the kernel's table with what
// sesame installed and the interfaces with the capture sockets.
const healEvery = 500 * time.Millisecond

// healer puts back what others change under the daemon: the table (an
// admin's `nft flush ruleset`, a reload of nftables.service or firewalld)
// and the capture sockets (an interface deleted and created again gets a
// new index, so a socket bound to the old one hears nothing). It shares mu
// with the reloader, which changes the same table, policy and sockets.
type healer struct {
	log   *slog.Logger
	mu    *sync.Mutex
	table *nft.Table
	r     *reloader
	met   *metrics
}

func (h *healer) run(ctx context.Context) {
	t := time.NewTicker(healEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.mu.Lock()
			h.healTable()
			h.r.caps.rebind(ctx)
			h.mu.Unlock()
		}
	}
}

func (h *healer) healTable() {
	d, err := h.table.Verify()
	if err != nil {
		h.log.Error(logevent.TableCheckFailed, "table", h.r.cur.Table, "err", err)
		return
	}
	if d.What == "" {
		return
	}
	attrs := []any{"table", h.r.cur.Table, "what", d.What}
	if d.GrantsLost {
		attrs = append(attrs, "grants", "lost with the table: clients must knock again")
	}
	h.log.Warn(logevent.TableChanged, attrs...)
	if err := h.table.Ensure(h.r.cur); err != nil {
		h.log.Error(logevent.TableRestoreFailed, "table", h.r.cur.Table, "err", explainNft(err), "note", "retrying")
		return
	}
	h.met.restores.Inc()
	h.log.Info(logevent.TableRestored, "table", h.r.cur.Table)
}

// rebind reopens capture on every interface whose index changed (deleted
// and created again), or whose sockets are missing (a failed reopen or
// filter restore), and closes it on interfaces that are gone, until they
// come back. The caller holds the reload lock.
func (c *captures) rebind(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pol == nil {
		return
	}
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
			continue
		}
		c.ifaces[name] = nf
		_ = c.local.Refresh() // its addresses came back with it
		c.log.Warn(logevent.CaptureRebound, "interface", name, "index", nf.index)
	}
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

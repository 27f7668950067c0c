package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/nft"
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
		h.log.Error("table check failed", "table", h.r.cur.Table, "err", err)
		return
	}
	if d.What == "" {
		return
	}
	attrs := []any{"table", h.r.cur.Table, "what", d.What}
	if d.GrantsLost {
		attrs = append(attrs, "grants", "lost with the table: clients must knock again")
	}
	h.log.Warn("table changed under sesame, restoring it", attrs...)
	if err := h.table.Ensure(h.r.cur); err != nil {
		h.log.Error("table restore failed", "table", h.r.cur.Table, "err", explainNft(err), "note", "retrying")
		return
	}
	h.met.restores.Inc()
	h.log.Info("table restored", "table", h.r.cur.Table)
}

// rebind reopens capture on every interface whose index changed (deleted
// and created again) and closes it on interfaces that are gone, until they
// come back. The caller holds the reload lock.
func (c *captures) rebind(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.conns {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			if r.conn != nil {
				c.log.Warn("interface gone, waiting for it to come back", "interface", name)
				r.stop()
			}
			continue
		}
		if r.conn != nil && r.index == ifi.Index {
			if down := ifi.Flags&net.FlagUp == 0; down != r.down {
				r.down = down
				if down {
					c.log.Warn("interface down, capture waits for it", "interface", name)
				} else {
					c.log.Info("interface up, capture resumed", "interface", name)
				}
			}
			continue
		}
		if r.conn != nil {
			r.stop()
		}
		nr, err := c.open(ctx, name)
		if err != nil {
			if !r.failed {
				c.log.Error("capture reopen failed", "interface", name, "err", err, "note", "retrying")
			}
			r.failed = true
			continue
		}
		c.conns[name] = nr
		_ = c.local.Refresh() // its addresses came back with it
		c.log.Warn("capture re-bound", "interface", name, "index", nr.index)
	}
}

// stop closes the socket and waits for its reader.
func (r *reader) stop() {
	if r.conn == nil {
		return
	}
	r.conn.Close()
	<-r.done
	r.conn = nil
}

// open opens capture on one interface with the current policy and starts
// its reader.
func (c *captures) open(ctx context.Context, name string) (*reader, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	conn, err := capture.Open(name, c.pol)
	if err != nil {
		return nil, err
	}
	r := &reader{conn: conn, done: make(chan struct{}), index: ifi.Index}
	go c.read(ctx, name, r)
	return r, nil
}

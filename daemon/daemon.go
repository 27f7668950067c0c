// Package daemon wires capture, the knock matcher and the nftables table
// into `sesame run`. It owns the signals (SIGHUP reloads; the caller's
// context ends the run), the reload logic and the event log. The hot path is
// one goroutine per interface reading hits and one goroutine owning the
// matcher; nothing on it takes a lock.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// Options configure a run.
type Options struct {
	ConfigPath string       // default policy.DefaultPath
	Log        *slog.Logger // nil: discard
	MaxEntries int          // matcher cap; 0: knock.DefaultMaxEntries
	Ready      func()       // called once when serving (e.g. systemd notify)
	// Notify, if set, gets sd_notify(3) state strings: READY=1 when
	// serving and after a reload, RELOADING=1 during one, STOPPING=1.
	Notify func(state string)
	// Version and Commit label sesame_build_info.
	Version, Commit string
}

// ConfigError is a configuration that failed validation. Its Diagnostics
// render with source snippets.
type ConfigError struct {
	Diags policy.Diagnostics
}

func (e *ConfigError) Error() string { return e.Diags.Error() }

// Run starts the daemon and serves until ctx ends. The table and its live
// grants outlive it: guarded ports stay shut and grants expire in the
// kernel.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ConfigPath == "" {
		o.ConfigPath = policy.DefaultPath
	}
	p, err := load(log, o.ConfigPath)
	if err != nil {
		return err
	}
	ifaces, err := interfaces(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	local, err := capture.NewLocalAddrs()
	if err != nil {
		return fmt.Errorf("read this host's addresses: %w", err)
	}
	go local.Watch(ctx, time.Second)

	met := newMetrics(o.Version, o.Commit)
	if p.MetricsListen != "" {
		if err := serveMetrics(ctx, log, p.MetricsListen, met); err != nil {
			return err
		}
	}
	hits := make(chan *hitBatch, 64)
	spas := newSPAState(log, met.reg)
	if err := spas.update(p); err != nil {
		return err
	}
	saved := make(chan struct{})
	go spas.saver(ctx, saved)
	defer func() { cancel(); <-saved }() // after the readers stopped: the last save
	caps := &captures{log: log, local: local, hits: hits, conns: map[string]*reader{}, met: met, spa: spas}
	defer caps.closeAll()
	if err := caps.sync(ctx, ifaces, p); err != nil {
		return err
	}
	caps.statsOnSignal(ctx)
	// The table comes last: a start that fails before this point must not
	// close the guarded ports with nobody listening for knocks.
	table, err := nft.New(p.Table, nft.WithLogger(log))
	if err != nil {
		return explainNft(err)
	}
	defer table.Close()
	met.watchTable(table)
	if err := table.Ensure(p); err != nil {
		return explainNft(err)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	l := newLoop(log, table, p, knock.Config{MaxEntries: o.MaxEntries})
	l.loadBurns()
	hooks := newHookRunner(ctx, log)
	defer func() { cancel(); hooks.Wait() }()
	l.hooks = hooks
	l.met = met
	l.spa = spas
	r := &reloader{log: log, path: o.ConfigPath, table: table, caps: caps, cur: p, notify: o.Notify}
	go (&healer{log: log, mu: &r.mu, table: table, r: r, met: met}).run(ctx)
	log.Info("ready", "table", p.Table, "interfaces", ifaces, "doors", len(p.Doors), "closed", p.Closed.String())
	if o.Ready != nil {
		o.Ready()
	}
	r.notifyf(notifyReady)
	l.run(ctx, hits, hup, tick.C, func() *policy.Policy { return r.reload(ctx) })
	r.notifyf(notifyStopping)
	log.Info("stopping", "table", p.Table, "note", "the table and live grants stay; grants expire in the kernel")
	return nil
}

// load reads and validates the config, logging its warnings.
func load(log *slog.Logger, path string) (*policy.Policy, error) {
	p, diags := policy.Load(path)
	if diags.HasErrors() {
		return nil, &ConfigError{Diags: diags}
	}
	for _, w := range diags.Warnings() {
		log.Warn("config warning", "detail", w.Error())
	}
	return p, nil
}

// interfaces returns the policy's interfaces, or those that carry a
// default route, and checks that each exists.
func interfaces(p *policy.Policy) ([]string, error) {
	names := p.Interfaces
	if len(names) == 0 {
		var err error
		if names, err = capture.DefaultInterfaces(); err != nil {
			return nil, fmt.Errorf("no interfaces configured and none found with a default route (set interfaces in %s): %w", p.File, err)
		}
	}
	for _, n := range names {
		if _, err := net.InterfaceByName(n); err != nil {
			return nil, fmt.Errorf("interface %q (in %s): no such interface", n, p.File)
		}
	}
	return names, nil
}

// explainNft names the capability or kernel feature behind an nftables
// error.
func explainNft(err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("nftables: %w: sesame needs CAP_NET_ADMIN", err)
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("nftables is not available in this kernel (load nf_tables): %w", err)
	}
	return err
}

// reloader re-reads the config on SIGHUP. An invalid config, or one the
// kernel refuses, leaves the old policy serving.
type reloader struct {
	log   *slog.Logger
	path  string
	table *nft.Table
	caps  *captures
	cur   *policy.Policy

	mu     sync.Mutex // held by reload and the healer
	notify func(state string)
}

func (r *reloader) reload(ctx context.Context) *policy.Policy {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notifyf(notifyReloading())
	defer r.notifyf(notifyReady)
	p, err := load(r.log, r.path)
	if err != nil {
		r.log.Error("reload-failed", "file", r.path, "err", err, "note", "still serving the previous policy")
		return nil
	}
	if p.MetricsListen != r.cur.MetricsListen {
		r.log.Warn("metrics_listen changed: that takes a restart", "file", r.path, "serving", r.cur.MetricsListen)
	}
	if p.Table != r.cur.Table {
		r.log.Error("reload-failed", "file", r.path, "err", fmt.Sprintf("table name changed from %q to %q: that needs a restart", r.cur.Table, p.Table), "note", "still serving the previous policy")
		return nil
	}
	ifaces, err := interfaces(p)
	if err == nil {
		err = r.table.Ensure(p)
	}
	if err == nil {
		err = r.caps.sync(ctx, ifaces, p)
	}
	if err != nil {
		r.log.Error("reload-failed", "file", r.path, "err", explainNft(err), "note", "still serving the previous policy")
		// Put back what a partial reload may have changed.
		if err := r.table.Ensure(r.cur); err != nil {
			r.log.Error("restore-failed", "err", err)
		}
		return nil
	}
	r.cur = p
	r.log.Info("reloaded", "file", r.path, "interfaces", ifaces, "doors", len(p.Doors))
	return p
}

// captures holds one reader per interface.
type captures struct {
	log   *slog.Logger
	local *capture.LocalAddrs
	hits  chan<- *hitBatch

	mu    sync.Mutex // guards conns against logStats
	conns map[string]*reader
	pol   *policy.Policy // the filter's policy, for reopening
	met   *metrics
	spa   *spaState // verifies SPA packets in the readers (spa.go)
}

type reader struct {
	conn   *capture.Conn // nil while its interface is gone
	done   chan struct{}
	index  int  // the interface index conn is bound to
	failed bool // a reopen failed (logged once)
	down   bool // the interface was down at the last check
}

// sync opens capture on every interface in names with p's filter, swaps the
// filter on those already open, and closes the rest.
func (c *captures) sync(ctx context.Context, names []string, p *policy.Policy) error {
	c.pol = p
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		if r, ok := c.conns[n]; ok && r.conn != nil {
			if err := r.conn.SetPolicy(p); err != nil {
				return fmt.Errorf("set capture filter on %q: %w", n, err)
			}
			continue
		}
		r, err := c.open(ctx, n) // capture's errors name the interface
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%w: sesame needs CAP_NET_RAW", err)
		}
		if err != nil {
			return err
		}
		c.conns[n] = r
	}
	for n, r := range c.conns {
		if !slices.Contains(names, n) {
			r.stop()
			delete(c.conns, n)
		}
	}
	if c.spa != nil {
		return c.spa.update(p)
	}
	return nil
}

// read forwards hits addressed to this host to the matcher, in batches.
func (c *captures) read(ctx context.Context, name string, r *reader) {
	defer close(r.done)
	free := newBatchPool()
	packets, hits := c.met.packets.WithLabelValues(name), c.met.hits
	for {
		var b *hitBatch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		n, err := r.conn.ReadHits(b.hits[:])
		if err != nil {
			free <- b
		}
		switch {
		case errors.Is(err, capture.ErrClosed) || ctx.Err() != nil:
			return
		case errors.Is(err, unix.ENETDOWN):
			continue // the healer logs down and up; the socket hears again once up
		case err != nil:
			c.log.Error("capture read failed", "interface", name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		packets.Add(float64(n))
		k := 0
		for i := range n {
			h := &b.hits[i]
			if !c.local.Contains(h.Dst) {
				continue
			}
			// An SPA packet is verified here, on the read buffer its
			// payload aliases (capture ends a batch after such a hit, so
			// the buffer holds until the next read), and never reaches the
			// matcher as a hit.
			if c.spa.handle(ctx, h) {
				continue
			}
			h.Payload = nil
			b.hits[k] = *h
			k++
		}
		if k == 0 {
			free <- b
			continue
		}
		hits.Add(float64(k))
		b.n = k
		select {
		case c.hits <- b:
		case <-ctx.Done():
			return
		}
	}
}

// closeAll logs the capture counters, then closes every socket.
func (c *captures) closeAll() {
	c.logStats()
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, r := range c.conns {
		r.stop()
		delete(c.conns, n)
	}
}

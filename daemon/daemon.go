// Package daemon wires capture, the knock matcher and the nftables table
// into `sesame run`. It owns the signals (SIGHUP reloads; the caller's
// context ends the run), the reload logic and the event log. The hot path is
// one goroutine per interface reading hits and one goroutine owning the
// matcher; nothing on it takes a lock. SPA packets have their own socket
// and goroutine per interface, which verifies them (spa.go).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/doctor"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
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
	p, fc, err := load(log, o.ConfigPath)
	if err != nil {
		return err
	}
	ifaces, err := interfaces(p)
	if err != nil {
		return err
	}
	p.Interfaces = ifaces // the forward chain's outside interfaces
	// Every goroutine started here is in bg, and Run returns only after
	// all of them: cancel, wait for bg (no healer can open a socket any
	// more), close the sockets (which joins their readers), save.
	ctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	local, err := capture.NewLocalAddrs()
	if err != nil {
		return fmt.Errorf("read this host's addresses: %w", err)
	}
	met := newMetrics(o.Version, o.Commit)
	heal := newHealer(log, met)
	bg.Go(func() { heal.watchLinks(ctx, local) })

	if p.MetricsListen != "" {
		if err := serveMetrics(ctx, &bg, log, p.MetricsListen, met); err != nil {
			return err
		}
	}
	hits := make(chan *hitBatch, 64)
	spas := newSPAState(log, met.reg)
	caps := newCaptures(log, local, hits, met, spas)
	caps.lost = heal.linksChanged
	defer spas.saveNow() // the last save, once the SPA readers are gone
	defer caps.closeAll()
	defer func() { cancel(); bg.Wait() }()
	if err := caps.sync(ctx, ifaces, p); err != nil {
		return err
	}
	caps.statsOnSignal(ctx, &bg)
	// The table comes last: a start that fails before this point must not
	// close the guarded ports with nobody listening for knocks.
	table, err := nft.New(p.Table, nft.WithLogger(log))
	if err != nil {
		return explainNft(err)
	}
	defer table.Close()
	met.watchTable(table)
	defer func() { cancel(); bg.Wait() }() // the healer uses the table
	if err := table.Ensure(p); err != nil {
		return explainNft(err)
	}
	logFindings(log, p, doctor.Read)

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
	if fc != nil {
		fs, err := startFleet(ctx, &bg, log, p, fc, met)
		if err != nil {
			return err
		}
		defer fs.link.Close()
		l.fleet = fs
		r.fleet = func(p *policy.Policy, next *fleet.Config) { fs.reload(fc, p, next) }
	}
	heal.mu, heal.table, heal.r = &r.mu, table, r
	bg.Go(func() { heal.watchTable(ctx, table.Watch) })
	bg.Go(func() { heal.run(ctx) })
	log.Info(logevent.Ready, "table", p.Table, "interfaces", ifaces, "doors", len(p.Doors), "closed", p.Closed.String())
	if o.Ready != nil {
		o.Ready()
	}
	r.notifyf(notifyReady)
	l.run(ctx, hits, hup, tick.C, func() *policy.Policy { return r.reload(ctx) })
	r.notifyf(notifyStopping)
	log.Info(logevent.Stopping, "table", p.Table, "note", "the table and live grants stay; grants expire in the kernel")
	return nil
}

// load reads and validates the config, and the fleet files it names
// (fleet.Load), logging their warnings.
func load(log *slog.Logger, path string) (*policy.Policy, *fleet.Config, error) {
	p, fc, diags := fleet.Load(path)
	if diags.HasErrors() {
		return nil, nil, &ConfigError{Diags: diags}
	}
	for _, w := range diags.Warnings() {
		log.Warn(logevent.ConfigWarning, "detail", w.Error())
	}
	return p, fc, nil
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
	table ensurer
	caps  *captures
	cur   *policy.Policy

	mu     sync.Mutex // held by reload and the healer
	notify func(state string)
	// fleet, if set, takes the fleet config of a policy that reloaded
	// (nil without a fleet block); it runs on the loop goroutine.
	fleet func(*policy.Policy, *fleet.Config)
}

// ensurer is what the reloader needs of the nftables table.
type ensurer interface {
	Ensure(p *policy.Policy) error
}

var _ ensurer = (*nft.Table)(nil)

// reload runs on the loop goroutine: it must never wait for a reader that
// could be waiting for the loop (captures.stop cancels a reader first).
// Capture changes all or nothing (captures.sync), so a reload that fails
// leaves the table, the sockets and the matcher on the old policy.
func (r *reloader) reload(ctx context.Context) *policy.Policy {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notifyf(notifyReloading())
	defer r.notifyf(notifyReady)
	p, fc, err := load(r.log, r.path)
	if err != nil {
		r.log.Error(logevent.ReloadFailed, "file", r.path, "err", err, "note", "still serving the previous policy")
		return nil
	}
	if p.MetricsListen != r.cur.MetricsListen {
		r.log.Warn(logevent.NeedsRestart, "file", r.path, "setting", "metrics_listen", "serving", r.cur.MetricsListen, "note", "metrics_listen changed: that takes a restart")
	}
	if p.Table != r.cur.Table {
		r.log.Error(logevent.ReloadFailed, "file", r.path, "err", fmt.Sprintf("table name changed from %q to %q: that needs a restart", r.cur.Table, p.Table), "note", "still serving the previous policy")
		return nil
	}
	if p.TableMode != r.cur.TableMode {
		r.log.Error(logevent.ReloadFailed, "file", r.path, "err", fmt.Sprintf("table_mode changed from %q to %q: that needs a restart (after sesame down, in full mode)", r.cur.TableMode, p.TableMode), "note", "still serving the previous policy")
		return nil
	}
	ifaces, err := interfaces(p)
	if err == nil {
		p.Interfaces = ifaces
		err = r.table.Ensure(p)
	}
	if err == nil {
		err = r.caps.sync(ctx, ifaces, p)
	}
	if err != nil {
		r.log.Error(logevent.ReloadFailed, "file", r.path, "err", explainNft(err), "note", "still serving the previous policy")
		// Put back what a partial reload may have changed.
		if err := r.table.Ensure(r.cur); err != nil {
			r.log.Error(logevent.RestoreFailed, "err", err)
		}
		return nil
	}
	r.cur = p
	if r.fleet != nil {
		r.fleet(p, fc)
	}
	r.log.Info(logevent.Reloaded, "file", r.path, "interfaces", ifaces, "doors", len(p.Doors))
	return p
}

// captures holds the capture sockets: per interface, one knock reader
// and, when the policy has SPA doors, one SPA reader.
type captures struct {
	log   *slog.Logger
	local *capture.LocalAddrs
	hits  chan<- *hitBatch
	met   *metrics
	spa   *spaState       // verifies SPA packets in the SPA readers (spa.go)
	lost  chan<- struct{} // kicked (kick) when sockets were closed for the healer to reopen

	// openConn and lookup are capture.Open/OpenSPA and
	// net.InterfaceByName; tests replace them.
	openConn func(name string, p *policy.Policy, spa bool) (conn, error)
	lookup   func(name string) (*net.Interface, error)

	mu     sync.Mutex // guards ifaces and pol against the healer, logStats and scrapes
	ifaces map[string]*iface
	// pol is the filters' policy, for reopening: a snapshot (snapshot)
	// that nobody changes, read by the healer's goroutine.
	pol *policy.Policy
}

// conn is what a reader needs of a capture socket.
type conn interface {
	ReadHits(hs []knock.Hit) (int, error)
	SetPolicy(p *policy.Policy) error
	Stats() (capture.Stats, error)
	Close() error
}

var _ conn = (*capture.Conn)(nil)

func newCaptures(log *slog.Logger, local *capture.LocalAddrs, hits chan<- *hitBatch, met *metrics, spa *spaState) *captures {
	c := &captures{log: log, local: local, hits: hits, met: met, spa: spa, ifaces: map[string]*iface{}, lookup: net.InterfaceByName}
	c.openConn = func(name string, p *policy.Policy, spa bool) (conn, error) {
		if spa {
			return capture.OpenSPA(name, p)
		}
		return capture.Open(name, p)
	}
	met.reg.MustRegister(captureCollector{c})
	return c
}

// iface is one interface's capture.
type iface struct {
	knock  *reader // nil while its interface is gone
	spa    *reader // nil without SPA doors, or while the interface is gone
	index  int     // the interface index the sockets are bound to
	failed bool    // a reopen failed (logged once)
	down   bool    // the interface was down at the last check
}

// reader is one capture socket and the goroutine that reads it.
type reader struct {
	conn   conn
	socket string // "knock" or "spa"
	// cancel ends the goroutine's context, which every blocking step of
	// the goroutine waits on besides its work (stop).
	cancel context.CancelFunc
	done   chan struct{}
	seen   capture.Stats // the counters already in the metrics (stats.go)
}

// snapshot copies p for the capture filters: its doors are copied, so the
// loop's one-time advances, which reassign fields of the live policy's
// doors (onetime.go), never race with a filter built on the healer's
// goroutine. It must run on the loop goroutine, or before the loop starts.
func snapshot(p *policy.Policy) *policy.Policy {
	s := *p
	s.Doors = slices.Clone(p.Doors)
	return &s
}

// sync opens capture on every interface in names with p's filters, swaps
// the filters of those already open, closes the rest and gives the SPA
// doors to the SPA readers: all or nothing. If a step fails, every socket
// goes back to the filter it had, the sockets opened are closed, and the
// error is returned: the caller keeps the old policy, and the sockets,
// the SPA state and the matcher all stay on it.
func (c *captures) sync(ctx context.Context, names []string, p *policy.Policy) error {
	snap := snapshot(p)
	withSPA := len(snap.SPAPorts()) > 0
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		undo   []func()
		opened = map[string]*iface{}
		newSPA = map[string]*reader{}
	)
	fail := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	for _, n := range names {
		f := c.ifaces[n]
		if f == nil || f.knock == nil {
			nf, err := c.open(ctx, n, snap) // capture's errors name the interface
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w: sesame needs CAP_NET_RAW", err)
			}
			if err != nil {
				return fail(err)
			}
			undo = append(undo, func() { c.stopAll(n, nf) })
			opened[n] = nf
			continue
		}
		for _, r := range []*reader{f.knock, f.spa} {
			if r == nil {
				continue
			}
			if err := r.conn.SetPolicy(snap); err != nil {
				return fail(fmt.Errorf("set capture filter on %q: %w", n, err))
			}
			undo = append(undo, func() { c.restore(n, f, r) })
		}
		if withSPA && f.spa == nil {
			r, err := c.start(ctx, n, snap, true)
			if err != nil {
				return fail(err)
			}
			undo = append(undo, func() { c.stop(n, r) })
			newSPA[n] = r
		}
	}
	if c.spa != nil {
		if err := c.spa.update(p); err != nil {
			return fail(err)
		}
	}
	for n, f := range c.ifaces {
		switch {
		case !slices.Contains(names, n):
			c.stopAll(n, f)
			delete(c.ifaces, n)
		case opened[n] != nil:
			c.stopAll(n, f) // gone and waiting for the healer: replaced below
		case !withSPA && f.spa != nil:
			c.stop(n, f.spa)
			f.spa = nil
		case newSPA[n] != nil:
			f.spa = newSPA[n]
		}
	}
	maps.Copy(c.ifaces, opened)
	c.pol = snap
	return nil
}

// restore puts the filter c.pol back on a socket of f, after a failed
// sync. If even that fails, f's sockets are closed: the healer reopens
// them with c.pol (rebind).
func (c *captures) restore(name string, f *iface, r *reader) {
	err := r.conn.SetPolicy(c.pol)
	if err == nil {
		return
	}
	c.log.Error(logevent.CaptureFilterLost, "interface", name, "err", err)
	c.stopAll(name, f)
	if c.lost != nil {
		kick(c.lost)
	}
}

// read forwards hits addressed to this host to the matcher, in batches,
// until ctx ends (reader.cancel, or the daemon stops) or the socket is
// closed. Every wait in it also waits on ctx: the loop goroutine, which
// takes the batches, may be the one stopping this reader (a reload).
func (c *captures) read(ctx context.Context, name string, r *reader) {
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
			if c.readFailed(ctx, name, err) {
				return
			}
			continue
		}
		packets.Add(float64(n))
		k := 0
		for i := range n {
			if h := &b.hits[i]; c.local.Contains(h.Dst) {
				b.hits[k] = *h
				k++
			}
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

// readFailed handles a read error and reports whether the reader must
// end: its socket is closed or its context ended. Other errors are logged
// and the read retried a second later.
func (c *captures) readFailed(ctx context.Context, name string, err error) bool {
	switch {
	case errors.Is(err, capture.ErrClosed) || ctx.Err() != nil:
		return true
	case errors.Is(err, unix.ENETDOWN):
		return false // the healer logs down and up; the socket hears again once up
	}
	c.log.Error(logevent.CaptureReadFailed, "interface", name, "err", err)
	select {
	case <-ctx.Done():
		return true
	case <-time.After(time.Second):
		return false
	}
}

// closeAll logs the capture counters, then closes every socket and waits
// for every reader.
func (c *captures) closeAll() {
	c.logStats()
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, f := range c.ifaces {
		c.stopAll(n, f)
		delete(c.ifaces, n)
	}
}

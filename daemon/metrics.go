package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
)

// metrics are the daemon's Prometheus counters. They are always kept (an
// atomic add each); the endpoint is served only when metrics_listen is set.
// The matcher's own counters (tracked sources, evictions) are copied from
// the loop goroutine that owns it once a tick, so a scrape takes no lock
// on the hot path.
type metrics struct {
	reg         *prometheus.Registry
	packets     *prometheus.CounterVec // by interface
	hits        prometheus.Counter
	stages      prometheus.Counter
	opens       prometheus.Counter
	closes      prometheus.Counter
	timeouts    prometheus.Counter
	resets      [knock.NumReasons]prometheus.Counter // by knock.Reason
	grantErrors prometheus.Counter
	netlink     prometheus.Histogram
	restores    prometheus.Counter
	tracked     atomic.Uint64
	evicted     atomic.Uint64

	// captureDrops (by interface, socket, reason) is registered by its
	// collector (stats.go), which brings it up to date at each scrape.
	captureDrops *prometheus.CounterVec
}

func newMetrics(version, commit string) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sesame", Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.packets = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sesame", Name: "packets_total",
		Help: "Packets that passed the capture filter, by interface."}, []string{"interface"})
	m.reg.MustRegister(m.packets)
	m.captureDrops = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sesame", Name: "capture_drops_total",
		Help: "Packets that passed a capture filter but did not reach the reader whole, by interface, socket (knock, spa) and reason (full: the ring or socket buffer was full; truncated)."},
		[]string{"interface", "socket", "reason"})
	m.hits = f("hits_total", "Knock-relevant packets addressed to this host, given to the matcher.")
	m.stages = f("stages_total", "Knock steps matched (sequence not yet complete).")
	m.opens = f("opens_total", "Grants that landed in the kernel: completed knocks (pending ones on a door with confirm), TOTP, one-time and SPA.")
	m.closes = f("closes_total", "Completed close sequences (early revokes).")
	m.timeouts = f("timeouts_total", "Sequences dropped because seq_timeout passed.")
	resets := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sesame", Name: "resets_total",
		Help: "Sequences reset, by reason: wrong-port, other-port (out-of-order packets), replayed (a TOTP sequence used before), other."}, []string{"reason"})
	m.reg.MustRegister(resets)
	for r := range knock.Reason(knock.NumReasons) {
		label := r.String()
		if r == knock.NoReason {
			label = "other"
		}
		m.resets[r] = resets.WithLabelValues(label)
	}
	m.grantErrors = f("grant_errors_total", "Grants and revokes that did not land (a full door, nftables refusing them after a retry).")
	m.restores = f("table_restores_total", "Times the table was found changed under sesame and put back.")
	m.netlink = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sesame", Name: "netlink_apply_seconds",
		Help:    "Time of one nftables transaction of grants and revokes.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14)})
	m.reg.MustRegister(m.netlink)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "sesame", Name: "tracked_sources",
		Help: "(sequence, source) entries the knock matchers hold (sequence and TOTP)."}, func() float64 { return float64(m.tracked.Load()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "sesame", Name: "evictions_total",
		Help: "Entries dropped to make room when a knock matcher was full."}, func() float64 { return float64(m.evicted.Load()) }))
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sesame", Name: "build_info",
		Help: "Always 1; the labels say which build runs."}, []string{"version", "commit", "goversion"})
	bi.WithLabelValues(version, commit, runtime.Version()).Set(1)
	m.reg.MustRegister(bi)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// decision counts one matcher decision.
func (m *metrics) decision(d *knock.Decision) {
	if m == nil {
		return
	}
	switch d.Kind {
	case knock.Stage:
		m.stages.Inc()
	case knock.Close:
		m.closes.Inc()
	case knock.Timeout:
		m.timeouts.Inc()
	case knock.Reset:
		r := d.Reason
		if int(r) >= len(m.resets) { // not a knock.Reason
			r = knock.NoReason
		}
		m.resets[r].Inc()
	}
}

// watchTable exports the table's own counters: pending grants deleted to
// make room for newer ones (a flood of spoofed knocks churning a door's
// pending set), and pending sets flushed when full of unknown elements.
func (m *metrics) watchTable(t *nft.Table) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "sesame", Name: "pending_evicted_total",
		Help: "Pending grants (knocks on a door with confirm, not yet connected) deleted to make room for newer ones."},
		func() float64 { ev, _ := t.PendingEvicted(); return float64(ev) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "sesame", Name: "pending_flushes_total",
		Help: "Pending sets flushed because they were full of grants sesame had not written (from before a restart)."},
		func() float64 { _, fl := t.PendingEvicted(); return float64(fl) }))
}

// opened counts a grant that landed (opens_total counts only those).
func (m *metrics) opened() {
	if m != nil {
		m.opens.Inc()
	}
}

// snapshot copies the matcher's counters; the loop calls it every tick.
func (m *metrics) snapshot(s knock.Stats) {
	if m == nil {
		return
	}
	m.tracked.Store(s.Tracked)
	m.evicted.Store(s.Evicted)
}

func (m *metrics) applied(d time.Duration) {
	if m != nil {
		m.netlink.Observe(d.Seconds())
	}
}

func (m *metrics) failed(n int) {
	if m != nil {
		m.grantErrors.Add(float64(n))
	}
}

// serveMetrics listens on ap and serves /metrics until ctx ends, in
// goroutines of bg.
func serveMetrics(ctx context.Context, bg *sync.WaitGroup, log *slog.Logger, ap string, m *metrics) error {
	ln, err := net.Listen("tcp", ap)
	if err != nil {
		return fmt.Errorf("metrics_listen %s: %w", ap, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	bg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(logevent.MetricsFailed, "listen", ap, "err", err)
		}
	})
	bg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	log.Info(logevent.Metrics, "listen", "http://"+ap+"/metrics")
	return nil
}

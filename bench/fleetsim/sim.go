// Package fleetsim is the fleet mode's scale benchmark (issue 14): M
// members, each the real fleet client (package fleet/natslink, its own NATS
// connection and key) with the daemon's fleet.Receiver and a fake set that
// records every applied grant, against a 3-node cluster of real nats-server
// processes, with or without a delaying TCP proxy between members and
// servers. It measures, it asserts nothing: see cmd/fleetsim and make
// fleetsim.
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sesame-knock/sesame/bench/internal/procstat"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/fleet/natslink"
)

// Options say what to run. Every loop is bounded by a count and a time.
type Options struct {
	NATSServer string // the nats-server binary
	Dir        string // scratch directory (server stores, logs)
	Members    []int
	Rates      []float64       // grants a second
	Delays     []time.Duration // added by the proxy each way; 0 is direct
	// CellFor is how long each rate publishes; MaxGrants caps the grants
	// of one cell (so a high rate at many members runs shorter).
	CellFor   time.Duration
	MaxGrants int
	OpenFor   time.Duration // of the matrix's grants
	// Settle bounds the wait, after a cell's last publish, for every
	// member to apply every grant.
	Settle time.Duration
	// RestartMembers > 0 runs the restart test, after the matrix, in a
	// phase of its own with that many members and no delay:
	// RestartRecords live records, then every server stopped,
	// OutageRecords published while they are down, and every server
	// started again.
	RestartMembers, RestartRecords, OutageRecords int
	// Checkers is how many members of each phase run the daemon's
	// fleet.Receiver and fake set (0: all); the others only carry (their
	// links connect, subscribe, catch up and deliver; the benchmark
	// records the delivery).
	Checkers int
	// VerifyBudget caps, in a phase with carriers, the Ed25519
	// verifications a second that a cell asks of the checking members:
	// a cell at rate r has min(Checkers, VerifyBudget/r) checking (0: no
	// cap).
	VerifyBudget float64
	// FullCheck adds a last phase with the most members, no delay, the
	// rate 10/s (or the first rate) and every member checking.
	FullCheck bool
	// ConvergeFor bounds the wait for every member to converge after the
	// restart; 0 is a minute.
	ConvergeFor time.Duration
	// Proxy starts a delaying proxy in front of upstreams and returns its
	// addresses, its process id (0 when in this process) and a stop
	// function; nil runs NewProxy in this process.
	Proxy func(upstreams []string, d time.Duration) (addrs []string, pid int, stop func(), err error)
	Log   io.Writer
	// LogMembers is how many members' links log to Log (0: none).
	LogMembers int
}

// Cell is the outcome of one rate in one phase (members, delay).
type Cell struct {
	Members int
	Rate    float64
	Delay   time.Duration
	For     time.Duration // publishing time
	Grants  int           // published
	// Complete counts the grants that every checking member applied and
	// every member got within Settle.
	Complete int
	Checkers int             // members that run the receiver and fake set
	Ack      []time.Duration // the link's publish ack latency (Status.PublishAck)
	// Last is, per complete grant, from publish to the last checking
	// member's apply; LastDelivery to the last member's link delivering
	// it (before the receiver's checks).
	Last, LastDelivery []time.Duration
	// Usage over the cell (publish start to settled): CPU as a fraction
	// of one core, RSS at its end.
	Wall                    time.Duration
	ServerCPU, SimCPU       float64
	ProxyCPU                float64
	ServerRSSKiB, SimRSSKiB int64
	PublishFailed, Dropped  uint64
	// Violations counts the cell's applies past not_after + max_skew.
	Violations int64
}

// RestartResult is the outcome of the restart test.
type RestartResult struct {
	Members, Checkers, Records, Outage int
	Load                               time.Duration // to apply Records everywhere
	Loaded                             int           // members holding all Records before the restart
	Down                               time.Duration // all servers stopped to all started
	Ready                              time.Duration // all started to every server healthy with JetStream
	// Bucket is from all started to the group's bucket answering a
	// status request (a client of the benchmark's own, retrying every
	// 100 ms): when the cluster can serve a catch-up again.
	Bucket time.Duration
	// Converge is, per converged member, the time from the last server's
	// start to the member holding every live record (Records + Outage)
	// with a catch-up completed after the restart.
	Converge  []time.Duration
	Converged int
	// Of the members not converged: how many completed no catch-up, and
	// the live records they miss in all.
	NoCatchUp, Missing int
}

// Result is a whole run.
type Result struct {
	Start   time.Time
	Took    time.Duration
	Connect map[string]time.Duration // phase -> every member connected and caught up
	Cells   []Cell
	Restart *RestartResult
	// Checked counts the grants applied (every member, every record);
	// Violations those whose kernel timeout ends past not_after +
	// max_skew; Overshoot the largest applied_at + timeout - not_after.
	Checked, Violations int64
	Overshoot           time.Duration
	// Gap is the longest time from a receiver's clock reading (the
	// decision's now) to the fake set's write.
	Gap            time.Duration
	Refused        map[string]int64
	Unknown        int64
	NoFile         uint64 // RLIMIT_NOFILE in effect
	MemberCPUTotal time.Duration
}

func (o *Options) convergeFor() time.Duration {
	if o.ConvergeFor == 0 {
		return time.Minute
	}
	return o.ConvergeFor
}

// memberLog returns the link logger of member i: the first LogMembers
// members log to Log, the others nowhere.
func (o *Options) memberLog(i int) *slog.Logger {
	if o.Log == nil || i >= o.LogMembers {
		return nil
	}
	return slog.New(slog.NewTextHandler(o.Log, nil)).With("member", i)
}

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, time.Now().Format("15:04:05 ")+format+"\n", a...)
	}
}

// Run runs the matrix: for each delay and member count, one phase (fresh
// members, a fresh group and bucket), each rate in turn.
func Run(o Options) (*Result, error) {
	if o.Dir == "" {
		return nil, errors.New("fleetsim: no scratch directory")
	}
	res := &Result{Start: time.Now(), Connect: map[string]time.Duration{}, Refused: map[string]int64{}}
	lim, err := RaiseNoFile()
	if err != nil {
		return nil, err
	}
	res.NoFile = lim
	o.logf("RLIMIT_NOFILE %d; starting 3 nats-server (%s)", lim, o.NATSServer)
	cl, err := StartCluster(o.NATSServer, filepath.Join(o.Dir, "cluster"), 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	t := newTracker()
	for _, d := range o.Delays {
		for _, m := range o.Members {
			ph := phase{members: m, delay: d, checkers: o.Checkers, rates: o.Rates}
			if err := runPhase(&o, cl, t, res, ph); err != nil {
				return res, err
			}
		}
	}
	if o.RestartMembers > 0 && o.RestartRecords > 0 {
		// A group of its own: its bucket holds the test's records only.
		ph := phase{members: o.RestartMembers, checkers: o.Checkers, restart: true}
		if err := runPhase(&o, cl, t, res, ph); err != nil {
			return res, err
		}
	}
	if o.FullCheck && len(o.Members) > 0 && o.Checkers > 0 && o.Checkers < slices.Max(o.Members) {
		r := o.Rates[0]
		if slices.Contains(o.Rates, 10) {
			r = 10
		}
		ph := phase{members: slices.Max(o.Members), full: true, rates: []float64{r}}
		if err := runPhase(&o, cl, t, res, ph); err != nil {
			return res, err
		}
	}
	c := &t.counts
	res.Checked, res.Violations, res.Overshoot, res.Unknown = c.applied.Load(), c.violations.Load(), time.Duration(c.overshoot.Load()), c.unknown.Load()
	res.Gap = time.Duration(c.gap.Load())
	for i := range c.refused {
		if n := c.refused[i].Load(); n > 0 {
			res.Refused[fleet.Reason(i).String()] = n
		}
	}
	res.Took = time.Since(res.Start)
	return res, nil
}

// phase is one set of members (a fresh group) and what runs on it.
type phase struct {
	members  int
	delay    time.Duration
	checkers int  // 0: all
	full     bool // every member checks at every rate
	rates    []float64
	restart  bool
}

func runPhase(o *Options, cl *Cluster, t *tracker, res *Result, ph phase) error {
	// The previous phase's members are gone: return their memory, so that
	// the RSS figures are this phase's.
	debug.FreeOSMemory()
	m, d := ph.members, ph.delay
	checkers := ph.checkers
	if checkers <= 0 || checkers > m {
		checkers = m
	}
	group := fmt.Sprintf("m%dd%d", m, d.Milliseconds())
	if ph.full {
		group += "full"
	}
	if ph.restart {
		group += "restart"
	}
	origins, ms, err := phaseMembers(m, group)
	if err != nil {
		return err
	}
	servers := cl.URLs()
	proxyPID := 0
	if d > 0 {
		start := o.Proxy
		if start == nil {
			start = inProcessProxy
		}
		addrs, pid, stop, err := start(cl.Addrs(), d)
		if err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
		defer stop()
		proxyPID = pid
		servers = nil
		for _, a := range addrs {
			servers = append(servers, "nats://"+a)
		}
	}
	self := fleet.Self{Fleet: fleetName, Groups: []string{group},
		Doors: map[string]fleet.Door{doorName: {Open: ports, OpenFor: doorOpenFor}}, MaxSkew: maxSkew}
	members := make([]*member, m)
	o.logf("phase %s: %d members (%d checking), delay %s: connecting", group, m, checkers, d)
	t0 := time.Now()
	for i, org := range origins {
		// The checking members are spread over the servers like the rest.
		var recv *fleet.Receiver
		if i < checkers {
			recv = fleet.NewReceiver(ms, self, seenCap, rate, burst)
		}
		mb := newMember(org, t, recv)
		// Rotate the server list so that members spread over the servers
		// (nats.go also shuffles it).
		srv := append(slices.Clone(servers[i%3:]), servers[:i%3]...)
		l, err := natslink.Open(natslink.Config{Fleet: fleetName, Member: org.Member,
			Receive: []string{group}, Publish: []string{group}, Servers: srv, Log: o.memberLog(i)}, mb.deliver)
		if err != nil {
			closeAll(members)
			return err
		}
		mb.link = l
		members[i] = mb
	}
	defer closeAll(members)
	// Every member connected and caught up (an empty bucket at first).
	if err := waitFor(2*time.Minute, func() bool {
		for _, mb := range members {
			if mb.link.Status().CatchUps < 1 {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("phase %s: members not caught up: %w", group, err)
	}
	res.Connect[group] = time.Since(t0)
	o.logf("phase %s: connected in %s", group, res.Connect[group].Round(time.Millisecond))
	for _, r := range ph.rates {
		k := checkers
		if o.VerifyBudget > 0 && !ph.full {
			k = max(1, min(checkers, int(o.VerifyBudget/r)))
		}
		for i, mb := range members {
			mb.checking.Store(mb.recv != nil && i < k)
		}
		c, err := runCell(o, cl, t, members, k, group, r, proxyPID)
		if err != nil {
			return err
		}
		c.Delay = d
		res.Cells = append(res.Cells, c)
		o.logf("cell m=%d (%d checking) rate=%g delay=%s: %d/%d complete; ack p50 %s p99 %s; last apply p50 %s p99 %s; last delivery p50 %s p99 %s; servers %.0f%% sim %.0f%%",
			m, k, r, d, c.Complete, c.Grants, pct(c.Ack, 50), pct(c.Ack, 99), pct(c.Last, 50), pct(c.Last, 99), pct(c.LastDelivery, 50), pct(c.LastDelivery, 99), 100*c.ServerCPU, 100*c.SimCPU)
	}
	for _, mb := range members {
		mb.checking.Store(mb.recv != nil)
	}
	if ph.restart {
		rr, err := runRestart(o, cl, t, members, group)
		if err != nil {
			return err
		}
		res.Restart = rr
	}
	return nil
}

func closeAll(ms []*member) {
	var wg sync.WaitGroup
	for _, m := range ms {
		if m != nil && m.link != nil {
			wg.Go(m.link.Close)
		}
	}
	wg.Wait()
}

func inProcessProxy(up []string, d time.Duration) ([]string, int, func(), error) {
	p, err := NewProxy(up, d)
	if err != nil {
		return nil, 0, nil, err
	}
	return p.Addrs(), 0, p.Close, nil
}

func waitFor(timeout time.Duration, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// inflight is a publish whose ack the cell waits for.
type inflight struct {
	m      *member
	before uint64 // Status.Published before the publish
	failed uint64
}

// publisher publishes grants from random members, one at a time per
// member, and collects each publish's ack latency from the origin's link.
type publisher struct {
	t       *tracker
	members []*member
	group   string
	openFor time.Duration
	busy    map[*member]inflight
	acks    []time.Duration
	dropped uint64
}

var srcCounter uint32

// publish publishes one grant from a random member not waiting for an
// ack (it waits for one when many are); restart marks it as one of the
// restart test's records.
func (p *publisher) publish(restart bool) (*grant, error) {
	var mb *member
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; mb == nil; i++ {
		c := p.members[rand.IntN(len(p.members))]
		if _, b := p.busy[c]; !b {
			mb = c
			break
		}
		if i%16 == 15 { // many waiting for their ack: wait a little
			if time.Now().After(deadline) {
				return nil, errors.New("no member free to publish for 30s: every one tried waits for an ack")
			}
			time.Sleep(time.Millisecond)
			p.poll()
		}
	}
	srcCounter++
	now := time.Now()
	id, env, err := mb.origin.Record(fleet.KindOpen, p.group, doorName, srcAddr(srcCounter), ports, p.openFor, now, nil)
	if err != nil {
		return nil, err
	}
	g := &grant{restart: restart}
	p.t.add(id, g)
	st := mb.link.Status()
	g.published = time.Now()
	if !mb.link.Publish(p.group, id, env, time.UnixMilli(now.UnixMilli()+p.openFor.Milliseconds())) {
		p.dropped++
		return g, nil
	}
	p.busy[mb] = inflight{m: mb, before: st.Published, failed: st.PublishFailed}
	return g, nil
}

// poll collects the acks that arrived.
func (p *publisher) poll() {
	for mb, f := range p.busy {
		st := mb.link.Status()
		if st.Published > f.before {
			p.acks = append(p.acks, st.PublishAck)
			delete(p.busy, mb)
		} else if st.PublishFailed > f.failed {
			delete(p.busy, mb)
		}
	}
}

// done reports whether g was applied by every checking member and
// delivered to every member.
func (g *grant) done(members, checkers int) bool {
	return int(g.applied.Load()) >= checkers && int(g.delivered.Load()) >= members
}

func runCell(o *Options, cl *Cluster, t *tracker, members []*member, checkers int, group string, r float64, proxyPID int) (Cell, error) {
	c := Cell{Members: len(members), Checkers: checkers, Rate: r}
	n := min(o.MaxGrants, max(1, int(r*o.CellFor.Seconds())))
	p := &publisher{t: t, members: members, group: group, openFor: o.OpenFor, busy: map[*member]inflight{}}
	before := usages(cl, proxyPID)
	violations := t.counts.violations.Load()
	failedBefore := publishFailed(members)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / r)
	var gs []*grant
	for i := range n {
		next := start.Add(time.Duration(i) * interval)
		for time.Now().Before(next) {
			p.poll()
			time.Sleep(min(time.Until(next), time.Millisecond))
		}
		g, err := p.publish(false)
		if err != nil {
			return c, err
		}
		gs = append(gs, g)
	}
	c.For = time.Since(start)
	c.Grants = n
	// Settle: every grant applied by every member, or Settle passed.
	deadline := time.Now().Add(o.Settle)
	for time.Now().Before(deadline) {
		p.poll()
		done := len(p.busy) == 0
		for _, g := range gs {
			if !g.done(len(members), checkers) {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.Wall = time.Since(start)
	after := usages(cl, proxyPID)
	c.ServerCPU = float64(after.server.CPU-before.server.CPU) / float64(c.Wall)
	c.SimCPU = float64(after.self.CPU-before.self.CPU) / float64(c.Wall)
	c.ProxyCPU = float64(after.proxy.CPU-before.proxy.CPU) / float64(c.Wall)
	c.ServerRSSKiB, c.SimRSSKiB = after.server.RSSKiB, after.self.RSSKiB
	for _, g := range gs {
		if g.done(len(members), checkers) {
			c.Complete++
			c.Last = append(c.Last, time.Duration(g.last.Load()-g.published.UnixNano()))
			c.LastDelivery = append(c.LastDelivery, time.Duration(g.lastDeliv.Load()-g.published.UnixNano()))
		}
	}
	c.Ack = p.acks
	c.Violations = t.counts.violations.Load() - violations
	c.Dropped = p.dropped
	c.PublishFailed = publishFailed(members) - failedBefore
	return c, nil
}

func publishFailed(ms []*member) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.link.Status().PublishFailed
	}
	return n
}

type usageSet struct{ server, self, proxy Usage }

func usages(cl *Cluster, proxyPID int) usageSet {
	var u usageSet
	u.server, _ = cl.Usage()
	u.self, _ = ProcUsage(os.Getpid())
	if proxyPID > 0 {
		u.proxy, _ = ProcUsage(proxyPID)
	}
	return u
}

// restartLoadRate is the rate of the restart test's records: neither an
// origin's queue nor the receivers' rate caps are the limit.
const restartLoadRate = 100

// runRestart loads RestartRecords live records, stops every server,
// publishes OutageRecords while they are down, starts every server again
// and measures each member's convergence.
func runRestart(o *Options, cl *Cluster, t *tracker, members []*member, group string) (*RestartResult, error) {
	rr := &RestartResult{Members: len(members), Records: o.RestartRecords, Outage: o.OutageRecords}
	// Within the verification budget at the load's rate, like a cell.
	for _, mb := range members {
		if mb.recv != nil {
			rr.Checkers++
		}
	}
	if o.VerifyBudget > 0 {
		rr.Checkers = max(1, min(rr.Checkers, int(o.VerifyBudget/restartLoadRate)))
	}
	for i, mb := range members {
		mb.checking.Store(mb.recv != nil && i < rr.Checkers)
		mb.mu.Lock()
		mb.want = o.RestartRecords + o.OutageRecords
		mb.mu.Unlock()
	}
	p := &publisher{t: t, members: members, group: group, openFor: doorOpenFor - time.Minute, busy: map[*member]inflight{}}
	o.logf("restart: loading %d live records on %d members", o.RestartRecords, len(members))
	start := time.Now()
	var gs []*grant
	for i := range o.RestartRecords {
		next := start.Add(time.Duration(float64(i) * float64(time.Second) / restartLoadRate))
		for time.Now().Before(next) {
			p.poll()
			time.Sleep(min(time.Until(next), time.Millisecond))
		}
		g, err := p.publish(true)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	all := func() bool {
		for _, g := range gs {
			if !g.done(len(members), rr.Checkers) {
				return false
			}
		}
		return true
	}
	_ = waitFor(5*time.Minute, all)
	rr.Load = time.Since(start)
	for _, mb := range members {
		if h, _ := mb.restartState(); h == o.RestartRecords {
			rr.Loaded++
		}
	}
	o.logf("restart: %d of %d members hold all %d records after %s", rr.Loaded, len(members), o.RestartRecords, rr.Load.Round(time.Millisecond))
	catchUps := make([]int, len(members))
	for i, mb := range members {
		catchUps[i] = mb.link.Status().CatchUps
	}
	down := time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { cl.Stop(i) })
	}
	wg.Wait()
	o.logf("restart: every server stopped; publishing %d records", o.OutageRecords)
	p.busy = map[*member]inflight{}
	for range o.OutageRecords {
		if _, err := p.publish(true); err != nil {
			return nil, err
		}
	}
	for i := range 3 {
		if err := cl.Start(i); err != nil {
			return nil, err
		}
	}
	up := time.Now()
	rr.Down = up.Sub(down)
	if err := cl.WaitReady(time.Minute); err != nil {
		return nil, err
	}
	rr.Ready = time.Since(up)
	// In the background, the time until the bucket answers again.
	bucketUp := make(chan time.Duration, 1)
	convergeFor := o.convergeFor()
	go func() { bucketUp <- probeBucket(cl.URLs(), natslink.Bucket(fleetName, group), up, convergeFor) }()
	o.logf("restart: every server started (down %s), healthy after %s", rr.Down.Round(time.Millisecond), rr.Ready.Round(time.Millisecond))
	conv := make([]time.Duration, len(members))
	_ = waitFor(convergeFor, func() bool {
		done := true
		for i, mb := range members {
			if conv[i] != 0 {
				continue
			}
			st := mb.link.Status()
			h, full := mb.restartState()
			if st.CatchUps > catchUps[i] && h == mb.want {
				at := max(st.LastCatchUp.UnixNano(), full)
				conv[i] = max(time.Duration(at-up.UnixNano()), 1)
				continue
			}
			done = false
		}
		return done
	})
	rr.Bucket = <-bucketUp
	for i, c := range conv {
		if c != 0 {
			rr.Converge = append(rr.Converge, c)
			continue
		}
		st := members[i].link.Status()
		h, _ := members[i].restartState()
		if st.CatchUps <= catchUps[i] {
			rr.NoCatchUp++
		}
		rr.Missing += members[i].want - h
	}
	rr.Converged = len(rr.Converge)
	o.logf("restart: bucket answering %s after the start; %d of %d members converged; p50 %s p99 %s; not converged: %d without a catch-up, %d records missing",
		rr.Bucket.Round(time.Millisecond), rr.Converged, len(members), pct(rr.Converge, 50), pct(rr.Converge, 99), rr.NoCatchUp, rr.Missing)
	return rr, nil
}

// pct returns the p-th percentile (0..100) of ds by nearest rank, 0 for
// none.
func pct(ds []time.Duration, p float64) time.Duration { return procstat.Percentile(ds, p) }

// probeBucket returns the time from since until bucket answers a status
// request through its own connection, or timeout.
func probeBucket(urls []string, bucket string, since time.Time, timeout time.Duration) time.Duration {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return timeout
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return timeout
	}
	deadline := since.Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		kv, err := js.KeyValue(ctx, bucket)
		if err == nil {
			_, err = kv.Status(ctx)
		}
		cancel()
		if err == nil {
			return time.Since(since)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return timeout
}

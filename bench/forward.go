package bench

import (
	"fmt"
	"os"
	"strings"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// The forward path (issue 13): the server routes to a backend namespace
// on a link of its own, and a door guards the backend's port with
// `forward`. The client knocks on the server and connects to the backend
// through it; the latency is from the last knock packet to that connect.
var (
	backend4 = nstest.Backend1Link.Peer4
	backend6 = nstest.Backend1Link.Peer6
)

// forwardLatency measures sesame's forward knock-to-grant latency, as the
// local one: a fresh topology with a backend, opts.Knocks knocks per
// family after two warm-up knocks, the grants flushed after each.
func forwardLatency(opts Options, res *Result, logf func(string, ...any)) error {
	dir, err := os.MkdirTemp("", "sesame-bench-fwd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t, err := newTopo()
	if err != nil {
		return err
	}
	defer t.Delete()
	bk, err := nstest.Create("bbk")
	if err != nil {
		return err
	}
	defer bk.Close()
	if err := nstest.Join(t.srv, bk, nstest.Backend1Link); err != nil {
		return err
	}
	if err := nstest.RouteVia(bk, nstest.Backend1Link); err != nil {
		return err
	}
	for _, s := range []struct {
		ns   *nstest.NS
		args string
	}{
		{t.srv, "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"},
		{t.cli, "ip route add default via " + server4.String()},
		{t.cli, "ip -6 route add default via " + server6.String()},
	} {
		f := strings.Fields(s.args)
		if _, err := s.ns.Run(f[0], f[1:]...); err != nil {
			return err
		}
	}
	s, err := listenSink(bk, guarded)
	if err != nil {
		return err
	}
	defer s.Close()

	cfg := fmt.Sprintf(`interfaces = [%q]
table      = "sesame"
closed     = "reject"

door "bench" {
  sequence    = [%s]
  seq_timeout = "5s"
  forward     = ["%s:%d/tcp", "[%s]:%d/tcp"]
  open_for    = "30s"
}
`, ifServer, sequenceHCL(knockPorts), backend4, guarded, backend6, guarded)
	p, err := startSesame(t.srv, opts.Sesame, dir, cfg, "info")
	if err != nil {
		return err
	}
	defer p.stop()
	logf("forward latency: %d knocks per family", opts.Knocks)
	flush := []string{}
	for _, set := range []string{"fpend4", "fpend6", "fwd4", "fwd6"} {
		flush = append(flush, "flush set inet sesame "+set+"_bench")
	}
	res.FwdLatency4, res.FwdLatency6, res.FwdLatencyFail, err = latencyRun(t.cli, opts.Knocks, backend4, backend6, func() error {
		_, err := t.srv.Run("nft", strings.Join(flush, "; "))
		return err
	})
	if err != nil {
		return err
	}
	if res.FwdLatencyFail > 0 {
		logf("%d forward knocks not granted; the daemon's last lines:\n%s", res.FwdLatencyFail, p.logTail())
	}
	return nil
}

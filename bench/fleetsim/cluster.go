package fleetsim

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sesame-knock/sesame/bench/internal/procstat"
	"github.com/sesame-knock/sesame/internal/nstest"
)

// Cluster is three real nats-server processes on 127.0.0.1, a JetStream
// cluster with file storage, started from the binary the fleettest module
// builds (make bin/nats-server). Clients reach each server on its client
// port; the servers do not advertise each other's client URLs
// (no_advertise), so that members stay behind the delaying proxy when
// there is one.
type Cluster struct {
	bin   string
	dir   string
	nodes [3]*node
}

type node struct {
	name                   string
	client, route, monitor int
	conf                   string
	cmd                    *exec.Cmd
	done                   chan struct{}
	started                time.Time
	log                    *os.File
}

// StartCluster writes the three servers' configurations under dir and
// starts them; it returns once each answers its health check with
// JetStream enabled, or an error after timeout.
func StartCluster(bin, dir string, timeout time.Duration) (*Cluster, error) {
	c := &Cluster{bin: bin, dir: dir}
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	for i := range c.nodes {
		c.nodes[i] = &node{name: fmt.Sprintf("n%d", i+1), client: ports[3*i], route: ports[3*i+1], monitor: ports[3*i+2]}
	}
	for i, n := range c.nodes {
		var routes []string
		for j, o := range c.nodes {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.route))
			}
		}
		store := filepath.Join(dir, n.name)
		if err := os.MkdirAll(store, 0o755); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 1MB
jetstream {
  store_dir: %q
  max_file_store: 1GB
  max_memory_store: 256MB
}
cluster {
  name: fleetsim
  listen: 127.0.0.1:%d
  no_advertise: true
  routes: [%s]
}
`, n.name, n.client, n.monitor, store, n.route, strings.Join(routes, ", "))
		n.conf = filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// URLs returns the servers' client URLs.
func (c *Cluster) URLs() []string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", n.client))
	}
	return u
}

// Addrs returns the servers' client addresses (host:port).
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.nodes {
		a = append(a, fmt.Sprintf("127.0.0.1:%d", n.client))
	}
	return a
}

// PIDs returns the running servers' process ids.
func (c *Cluster) PIDs() []int {
	var p []int
	for _, n := range c.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			p = append(p, n.cmd.Process.Pid)
		}
	}
	return p
}

func (c *Cluster) start(i int) error {
	n := c.nodes[i]
	log, err := os.OpenFile(filepath.Join(c.dir, n.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a ^C to the benchmark reaches it through
	// Close, not twice.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	n.cmd, n.log, n.started = cmd, log, time.Now()
	n.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(n.done)
	}()
	return nil
}

// Stop stops server i (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (c *Cluster) Stop(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	nstest.Terminate(n.cmd.Process, n.done, 10*time.Second)
	n.cmd = nil
}

// Start starts server i again, with its stored state; it returns once
// the process runs (not once it is ready: see WaitReady).
func (c *Cluster) Start(i int) error { return c.start(i) }

// WaitReady waits until every server answers /healthz with JetStream
// enabled.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: time.Second}
	for _, n := range c.nodes {
		for {
			r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", n.monitor))
			if err == nil {
				r.Body.Close()
				if r.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-n.done:
				return fmt.Errorf("%s exited; see %s", n.name, filepath.Join(c.dir, n.name+".log"))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s", n.name, timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Close stops every server.
func (c *Cluster) Close() {
	for i := range c.nodes {
		if c.nodes[i] != nil {
			c.Stop(i)
		}
	}
}

// Usage is the servers' summed usage.
func (c *Cluster) Usage() (Usage, error) {
	var sum Usage
	for _, pid := range c.PIDs() {
		u, err := ProcUsage(pid)
		if err != nil {
			return sum, err
		}
		sum.CPU += u.CPU
		sum.RSSKiB += u.RSSKiB
		sum.PeakRSSKiB += u.PeakRSSKiB
	}
	return sum, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Usage is a process's CPU time (user+system) and memory, from /proc.
type Usage = procstat.Usage

// ProcUsage reads pid's CPU time (its own, not its children's) and memory.
func ProcUsage(pid int) (Usage, error) { return procstat.Read(pid, false) }

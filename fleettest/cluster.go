// Package fleettest runs the fleet link against real NATS servers: an
// in-process 3-node JetStream cluster (Cluster) whose authorization is
// the documented example, docs/fleet/nats-server.conf, or the same
// permissions generated for any fleet (Authorization). Its tests are the
// fleet's integration tests (no root); e2e, the demo and the benchmark
// reuse the cluster. The module is separate so that nats-server stays
// out of the product's go.mod.
package fleettest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/sesame-knock/sesame/fleet/natslink"
)

// Nodes is the size of the cluster.
const Nodes = 3

// Auth is an authorization block of nats-server's configuration and the
// users it names: each user is a variable NKEY_<NAME> (NAME upper-cased,
// "-" as "_") that the cluster defines with a fresh nkey.
type Auth struct {
	Block string   // "authorization { ... }"
	Users []string // user names, e.g. "bastion-1", "admin"
}

// NkeyVar is the variable that holds user's public nkey in an Auth block.
func NkeyVar(user string) string {
	return "NKEY_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// DocsConf returns the path of docs/fleet/nats-server.conf in the source
// tree this package was built from.
func DocsConf() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source tree")
	}
	p := filepath.Join(filepath.Dir(file), "..", "docs", "fleet", "nats-server.conf")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// The documented example's fleet: its name, group and members.
const (
	DocsFleet = "prod"
	DocsGroup = "web"
)

// DocsMembers are the members of the documented example.
var DocsMembers = []string{"bastion-1", "web-1", "web-2", "web-3", "web-4"}

// DocsAuth returns the authorization block of docs/fleet/nats-server.conf
// exactly as written there, and its users (DocsMembers and "admin").
func DocsAuth() (Auth, error) {
	p, err := DocsConf()
	if err != nil {
		return Auth{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Auth{}, err
	}
	block, err := authBlock(string(b))
	if err != nil {
		return Auth{}, fmt.Errorf("%s: %w", p, err)
	}
	return Auth{Block: block, Users: append(slices.Clone(DocsMembers), "admin")}, nil
}

// authBlock cuts "authorization { ... }" out of a configuration: from the
// line that opens it to the first line that is a lone "}".
func authBlock(conf string) (string, error) {
	lines := strings.Split(conf, "\n")
	start := slices.Index(lines, "authorization {")
	if start < 0 {
		return "", errors.New(`no line "authorization {"`)
	}
	end := slices.Index(lines[start:], "}")
	if end < 0 {
		return "", errors.New("authorization block not closed by a lone }")
	}
	return strings.Join(lines[start:start+end+1], "\n") + "\n", nil
}

// MemberPermissions returns the permissions of one member, as the
// documented example writes them: write its own keys in the groups it
// publishes to; read the buckets of all its groups (stream info, an
// ordered consumer for the catch-up, direct gets); subscribe to the
// republished records of its groups and to its replies.
func MemberPermissions(fleet, member string, receive, publish []string) string {
	var allow []string
	groups := slices.Clone(receive)
	for _, g := range publish {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	var subs []string
	for _, g := range groups {
		stream := natslink.Stream(fleet, g)
		if slices.Contains(publish, g) {
			allow = append(allow, "$KV."+natslink.Bucket(fleet, g)+"."+member+".>")
		}
		allow = append(allow,
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.CONSUMER.CREATE."+stream+".>",
			"$JS.API.CONSUMER.DELETE."+stream+".>",
			"$JS.API.DIRECT.GET."+stream+".>",
			"$JS.FC."+stream+".>",
		)
		subs = append(subs, natslink.SubjectPrefix(fleet, g)+">")
	}
	subs = append(subs, "_INBOX.>")
	var b strings.Builder
	b.WriteString("{\n    publish = {\n      allow = [\n")
	for _, s := range allow {
		fmt.Fprintf(&b, "        %q\n", s)
	}
	b.WriteString("      ]\n    }\n    subscribe = { allow = [")
	for i, s := range subs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteString("] }\n  }")
	return b.String()
}

// Authorization generates the documented example's block for any fleet:
// every member receives and publishes in every group, and an "admin" may
// do anything (create the buckets).
func Authorization(fleet string, groups, members []string) Auth {
	var b strings.Builder
	b.WriteString("authorization {\n")
	for _, m := range members {
		fmt.Fprintf(&b, "  %s = %s\n", permVar(m), MemberPermissions(fleet, m, groups, groups))
	}
	b.WriteString("  ADMIN = {\n    publish = { allow = [\">\"] }\n    subscribe = { allow = [\">\"] }\n  }\n  users = [\n")
	users := append(slices.Clone(members), "admin")
	for _, u := range users {
		fmt.Fprintf(&b, "    { nkey: $%s, permissions: $%s }\n", NkeyVar(u), permVar(u))
	}
	b.WriteString("  ]\n}\n")
	return Auth{Block: b.String(), Users: users}
}

func permVar(user string) string { return strings.ToUpper(strings.ReplaceAll(user, "-", "_")) }

// Cluster is an in-process 3-node JetStream cluster on 127.0.0.1, with a
// store directory per node that outlives Stop (a restart keeps it).
type Cluster struct {
	dir   string
	auth  Auth
	seeds map[string]string // user -> seed file
	pubs  map[string]string // user -> public nkey

	mu      sync.Mutex
	servers [Nodes]*server.Server
	confs   [Nodes]string
	ports   [Nodes]int
}

// ClusterOption changes a cluster's configuration.
type ClusterOption func(*clusterConf)

type clusterConf struct {
	noAdvertise bool
}

// NoAdvertise keeps every node from telling clients the other nodes'
// URLs: a client knows only the URLs it was given (so that a test can
// keep a member away from the cluster by stopping its one node).
func NoAdvertise() ClusterOption { return func(c *clusterConf) { c.noAdvertise = true } }

// NewCluster starts a cluster in dir (which it fills: node stores,
// configurations, one nkey seed file per user) with auth's authorization.
// Close stops it.
func NewCluster(dir string, auth Auth, opts ...ClusterOption) (*Cluster, error) {
	var cc clusterConf
	for _, o := range opts {
		o(&cc)
	}
	c := &Cluster{dir: dir, auth: auth, seeds: map[string]string{}, pubs: map[string]string{}}
	var vars strings.Builder
	for _, u := range auth.Users {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		f := filepath.Join(dir, u+".nk")
		if err := os.WriteFile(f, append(seed, '\n'), 0o600); err != nil {
			return nil, err
		}
		c.seeds[u], c.pubs[u] = f, pub
		fmt.Fprintf(&vars, "%s: %q\n", NkeyVar(u), pub)
	}
	var routePorts [Nodes]int
	for i := range Nodes {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		c.ports[i] = p
		if routePorts[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	for i := range Nodes {
		var routes []string
		for j := range Nodes {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[j]))
			}
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_file_store: 1GB
  max_memory_store: 64MB
}
cluster {
  name: sesame-test
  listen: 127.0.0.1:%d
  routes: [%s]
  no_advertise: %t
}
%s
%s`, i+1, c.ports[i], filepath.Join(dir, fmt.Sprintf("n%d", i+1)), routePorts[i], strings.Join(routes, ", "), cc.noAdvertise, vars.String(), auth.Block)
		c.confs[i] = filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(c.confs[i], []byte(conf), 0o600); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, Nodes)
	for i := range Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Start(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts node i (again, with its store as Stop left it).
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	running := c.servers[i] != nil
	c.mu.Unlock()
	if running {
		return nil
	}
	opts, err := server.ProcessConfigFile(c.confs[i])
	if err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	opts.NoSigs = true
	opts.NoLog = os.Getenv("FLEETTEST_NATS_LOG") == ""
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	if !opts.NoLog {
		s.ConfigureLogger()
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("node %d: not ready for connections after 20s", i+1)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// Stop stops node i; its store stays for Start.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Close stops every node.
func (c *Cluster) Close() {
	for i := range Nodes {
		c.Stop(i)
	}
}

// URLs returns the client URL of every node, running or not.
func (c *Cluster) URLs() []string {
	out := make([]string, Nodes)
	for i, p := range c.ports {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	return out
}

// URL returns node i's client URL.
func (c *Cluster) URL(i int) string { return c.URLs()[i] }

// Running reports whether node i runs.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i] != nil
}

// Creds returns the nkey seed file of user, for natslink.Config.Creds.
func (c *Cluster) Creds(user string) string { return c.seeds[user] }

// Connect connects as user to the given URLs (all nodes if none).
func (c *Cluster) Connect(user string, opts ...nats.Option) (*nats.Conn, error) {
	o, err := nats.NkeyOptionFromSeed(c.seeds[user])
	if err != nil {
		return nil, err
	}
	return nats.Connect(strings.Join(c.URLs(), ","), append([]nats.Option{o, nats.Name("fleettest " + user)}, opts...)...)
}

// StreamLeader returns the node that leads stream (of the global
// account), or -1.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// MetaLeader returns the node that leads the JetStream meta group, or -1.
func (c *Cluster) MetaLeader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// nkeyLine matches the users of an authorization block, for Check.
var nkeyLine = regexp.MustCompile(`nkey: \$(NKEY_[A-Z0-9_]+), permissions: \$([A-Z0-9_]+)`)

// UsersOf lists the (nkey variable, permissions variable) pairs of an
// authorization block's users.
func UsersOf(block string) [][2]string {
	var out [][2]string
	for _, m := range nkeyLine.FindAllStringSubmatch(block, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

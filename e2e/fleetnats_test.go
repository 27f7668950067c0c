package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sesame-knock/sesame/fleet/natslink"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/syncbuf"
)

// NatsAuth returns the authorization block of docs/fleet/nats-server.conf,
// exactly as written there: from its line "authorization {" to the first
// lone "}".
func NatsAuth() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "docs", "fleet", "nats-server.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	lines := strings.Split(string(b), "\n")
	start := slices.Index(lines, "authorization {")
	if start < 0 {
		return "", fmt.Errorf("%s: no line \"authorization {\"", p)
	}
	end := slices.Index(lines[start:], "}")
	if end < 0 {
		return "", fmt.Errorf("%s: the authorization block is not closed by a lone }", p)
	}
	return strings.Join(lines[start:start+end+1], "\n") + "\n", nil
}

// NkeyVar is the variable of docs/fleet/nats-server.conf that holds user's
// public nkey (NKEY_BASTION_1 for bastion-1).
func NkeyVar(user string) string {
	return "NKEY_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// NatsServer is one nats-server process in the hub.
type NatsServer struct {
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
}

// NatsCluster is the 3-node cluster and the nkey seed file of every user
// of its authorization block (the members and "admin").
type NatsCluster struct {
	Nodes []*NatsServer
	Seeds map[string]string // user -> seed file (mode 0600), sesame.hcl's fleet.nats.creds
}

// StartNatsCluster writes one config per node in dir (its own server_name,
// listen addresses, store and routes; then the users' nkeys and
// docs/fleet/nats-server.conf's authorization block) and starts the nodes
// in the hub, each a real nats-server process killed when the test ends
// (its log printed if the test failed). It returns once every node
// accepts client connections (at most 20s).
func StartNatsCluster(t testing.TB, hub *nstest.NS, dir string) *NatsCluster {
	t.Helper()
	auth, err := NatsAuth()
	if err != nil {
		t.Fatal(err)
	}
	c := &NatsCluster{Seeds: map[string]string{}}
	var vars strings.Builder
	nk := NkBin(t)
	for _, u := range append(slices.Clone(FleetMembers), "admin") {
		out, err := exec.Command(nk, "-gen", "user", "-pubout").Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) != 2 || !strings.HasPrefix(f[0], "SU") || !strings.HasPrefix(f[1], "U") {
			t.Fatalf("nk -gen user -pubout: %v: %q", err, out)
		}
		c.Seeds[u] = filepath.Join(dir, u+".nk")
		if err := os.WriteFile(c.Seeds[u], []byte(f[0]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&vars, "%s: %q\n", NkeyVar(u), f[1])
	}
	bin := NatsServerBin(t)
	for i, a := range NatsAddrs {
		var routes []string
		for j, b := range NatsAddrs {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", "nats-route://"+netip.AddrPortFrom(b, NatsRoutePort).String()))
			}
		}
		conf := fmt.Sprintf(`server_name: nats-%d
listen: %q
jetstream {
  store_dir: %q
  max_file_store: 1GB
  max_memory_store: 64MB
}
cluster {
  name: sesame
  listen: %q
  routes: [%s]
}
%s
%s`, i+1, netip.AddrPortFrom(a, NatsClientPort), filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)),
			netip.AddrPortFrom(a, NatsRoutePort), strings.Join(routes, ", "), vars.String(), auth)
		path := filepath.Join(dir, fmt.Sprintf("nats-%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &NatsServer{log: &syncbuf.Buffer{}, done: make(chan struct{})}
		s.cmd = hub.Command(bin, "-c", path)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start nats-server: %v", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("nats-%d log:\n%s", i+1, s.log.String())
			}
		})
		c.Nodes = append(c.Nodes, s)
	}
	for i, s := range c.Nodes {
		if !Poll(20*time.Second, func() bool { return strings.Contains(s.log.String(), "Server is ready") }) {
			t.Fatalf("nats-%d is not ready after 20s:\n%s", i+1, s.log.String())
		}
	}
	return c
}

// Stop sends SIGTERM, waits up to 5s, then kills.
func (s *NatsServer) Stop() {
	nstest.Terminate(s.cmd.Process, s.done, 5*time.Second)
}

// CreateBucket creates the group's bucket (natslink.StreamConfig, what the
// link creates when its credentials allow) as an admin does
// (docs/fleet/nats-server.conf: the members may not), with the admin's
// nkey, from the hub, retrying until the cluster has elected its
// JetStream leader (at most 30s).
func (c *NatsCluster) CreateBucket(t testing.TB, hub *nstest.NS, fleetName, group string) {
	t.Helper()
	var last error
	ok := Poll(30*time.Second, func() bool {
		last = hub.Do(func() error {
			opt, err := nats.NkeyOptionFromSeed(c.Seeds["admin"])
			if err != nil {
				return err
			}
			nc, err := nats.Connect(strings.Join(NatsURLs(), ","), opt, nats.NoReconnect(), nats.Timeout(2*time.Second))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = js.CreateStream(ctx, natslink.StreamConfig(fleetName, group, len(NatsAddrs)))
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return nil
			}
			return err
		})
		return last == nil
	})
	if !ok {
		t.Fatalf("create bucket %s: %v", natslink.Bucket(fleetName, group), last)
	}
}

// The binaries the fleet tests need besides sesame.
var (
	toolsOnce sync.Once
	toolsDir  string
	toolsErr  error
	natsBin   string
	nkBin     string
)

// NatsServerBin returns the real nats-server binary: $NATS_SERVER_BIN
// (make builds bin/nats-server), or else one built once from the fleettest
// module (go -C fleettest build github.com/nats-io/nats-server/v2).
func NatsServerBin(t testing.TB) string {
	t.Helper()
	buildTools(t)
	return natsBin
}

// NkBin returns the nk tool (github.com/nats-io/nkeys/nk, a dependency of
// the product's go.mod already), built once: docs/fleet/nats-server.conf
// makes each host's nkey with nk -gen user -pubout.
func NkBin(t testing.TB) string {
	t.Helper()
	buildTools(t)
	return nkBin
}

func buildTools(t testing.TB) {
	t.Helper()
	toolsOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			toolsErr = err
			return
		}
		if toolsDir, toolsErr = os.MkdirTemp("", "sesame-e2e-tools-"); toolsErr != nil {
			return
		}
		build := func(dir, out, pkg string) error {
			cmd := exec.Command("go", "-C", dir, "build", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go -C %s build %s: %v\n%s", dir, pkg, err, b)
			}
			return nil
		}
		if natsBin = os.Getenv("NATS_SERVER_BIN"); natsBin != "" {
			natsBin, toolsErr = binPath(natsBin)
		} else {
			natsBin = filepath.Join(toolsDir, "nats-server")
			toolsErr = build(filepath.Join(root, "fleettest"), natsBin, "github.com/nats-io/nats-server/v2")
		}
		if toolsErr == nil {
			nkBin = filepath.Join(toolsDir, "nk")
			toolsErr = build(root, nkBin, "github.com/nats-io/nkeys/nk")
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
}

// removeTools deletes what buildTools built (TestMain calls it).
func removeTools() {
	if toolsDir != "" {
		os.RemoveAll(toolsDir)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// Forward doors (issue 13): the server is a router (forwarding on) running
// sesame; backend namespaces sit behind it on links of their own (the
// "containers"), the client and the stranger outside on the captured
// interfaces. Every check is a real connection through the router.

// The first backend's addresses (nstest.Backend1Link).
var (
	backend1  = nstest.Backend1Link.Peer4
	backend16 = nstest.Backend1Link.Peer6
)

// fwdTopo is Topo with forwarding on in the server, default routes through
// it everywhere, and backends b1 (on s-b1) and b2 (on s-b2).
type fwdTopo struct {
	*Topo
	B1, B2 *nstest.NS
}

func newFwdTopo(t *testing.T) *fwdTopo {
	t.Helper()
	ft := &fwdTopo{Topo: NewTopo(t), B1: nstest.New(t, "b1"), B2: nstest.New(t, "b2")}
	for _, b := range []struct {
		ns *nstest.NS
		l  nstest.Link
	}{{ft.B1, nstest.Backend1Link}, {ft.B2, nstest.Backend2Link}} {
		if err := nstest.Join(ft.Server, b.ns, b.l); err != nil {
			t.Fatal(err)
		}
		if err := nstest.RouteVia(b.ns, b.l); err != nil {
			t.Fatal(err)
		}
	}
	for _, peer := range []struct {
		ns     *nstest.NS
		r4, r6 netip.Addr
	}{{ft.Client, ServerClient4, ServerClient6}, {ft.Stranger, ServerStranger4, ServerStranger6}} {
		peer.ns.Exec(t, "ip", "route", "add", "default", "via", peer.r4.String())
		peer.ns.Exec(t, "ip", "-6", "route", "add", "default", "via", peer.r6.String())
	}
	ft.Server.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return ft
}

// fwdConfig has a forward door "app" (short open_for, confirm on by
// default), a local door "ssh" (open 2200) and the outside interfaces.
func fwdConfig(forward string) string {
	return fmt.Sprintf(`
interfaces = [%q, %q]
door "app" {
  sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
  forward  = [%s]
  open_for = "2s"
}
door "ssh" {
  sequence = ["7100/tcp", "8100/udp", "9100/tcp"]
  open     = ["2200/tcp"]
  open_for = "2s"
}
`, IfServerToClient, IfServerToStranger, forward)
}

const fwdTimeout = 700 * time.Millisecond

// reach fails the test unless ns can (or cannot, with !want) connect to
// addr:port and exchange a line.
func reach(t *testing.T, what string, ns *nstest.NS, addr netip.Addr, port uint16, want bool) {
	t.Helper()
	err := Connect(ns, addr, port, fwdTimeout)
	switch {
	case want && err != nil:
		t.Errorf("%s: %s:%d: %v, want a connection", what, addr, port, err)
	case !want && err == nil:
		t.Errorf("%s: %s:%d: connected, want it closed", what, addr, port)
	}
}

// fwdGrants returns the addresses in forward grant set name.
func fwdGrants(t *testing.T, ns *nstest.NS, name string) []netip.Addr {
	t.Helper()
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(ns.Exec(t, "nft", "-j", "list", "set", "inet", "sesame", name)), &doc); err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			var w struct {
				Elem struct {
					Val string `json:"val"`
				} `json:"elem"`
			}
			s := ""
			if json.Unmarshal(raw, &w) == nil && w.Elem.Val != "" {
				s = w.Elem.Val
			} else {
				_ = json.Unmarshal(raw, &s)
			}
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

// knockApp knocks door app from the client and waits for its forward
// grant (pending until the first connection confirms it).
func knockApp(t *testing.T, ft *fwdTopo, d *Daemon) {
	t.Helper()
	Knock(t, ft.Client, ServerClient4.String(), "7000", "8000:udp", "9000")
	if _, err := d.WaitLog(3*time.Second, Msg(logevent.GrantApplied, "door", "app")); err != nil {
		t.Fatalf("no grant for the knock: %v", err)
	}
}

// expire waits for the client's forward grants of door app to go.
func expire(t *testing.T, ft *fwdTopo) {
	t.Helper()
	if !Poll(6*time.Second, func() bool {
		return len(fwdGrants(t, ft.Server, "fwd4_app"))+len(fwdGrants(t, ft.Server, "fpend4_app"))+len(fwdGrants(t, ft.Server, "fwd6_app")) == 0
	}) {
		t.Fatal("forward grants did not expire")
	}
}

// TestForwardDocker: Docker's own rules for `docker run -p 8080:80`
// (iptables-nft, as dockerd installs them: nat DOCKER chain with the DNAT,
// FORWARD policy drop, DOCKER-USER, the DOCKER accept for the container's
// port). Docker's FORWARD accept does not let an ungranted client past
// sesame's drop; a knock opens it for the knocker only, until expiry.
func TestForwardDocker(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables (iptables-nft) is not installed: e2e/deps.sh installs it")
	}
	ft := newFwdTopo(t)
	Listen(t, ft.B1, 80)
	for _, rule := range []string{
		"-t nat -N DOCKER",
		"-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
		"-t nat -A DOCKER ! -i s-b1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 203.0.113.10:80",
		"-N DOCKER", "-N DOCKER-USER", "-N DOCKER-ISOLATION-STAGE-1",
		"-P FORWARD DROP",
		"-A FORWARD -j DOCKER-USER",
		"-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
		"-A FORWARD -o s-b1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A FORWARD -o s-b1 -j DOCKER",
		"-A FORWARD -i s-b1 ! -o s-b1 -j ACCEPT",
		"-A FORWARD -i s-b1 -o s-b1 -j ACCEPT",
		"-A DOCKER -d 203.0.113.10/32 ! -i s-b1 -o s-b1 -p tcp -m tcp --dport 80 -j ACCEPT",
		"-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
		"-A DOCKER-USER -j RETURN",
	} {
		ft.Server.Exec(t, "iptables", strings.Fields(rule)...)
	}
	// Docker's rules work on their own: the published port is open to all.
	reach(t, "before sesame, stranger", ft.Stranger, ServerStranger4, 8080, true)

	d := StartDaemon(t, ft.Server, fwdConfig(`"8080/tcp"`))
	reach(t, "before the knock, client", ft.Client, ServerClient4, 8080, false)
	reach(t, "before the knock, stranger", ft.Stranger, ServerStranger4, 8080, false)
	knockApp(t, ft, d)
	reach(t, "after the knock, client", ft.Client, ServerClient4, 8080, true)
	reach(t, "after the knock, stranger", ft.Stranger, ServerStranger4, 8080, false)
	if got := fwdGrants(t, ft.Server, "fwd4_app"); len(got) != 1 || got[0] != Client4 {
		t.Errorf("fwd4_app = %v, want the client's confirmed grant", got)
	}
	// A forward grant opens no local port.
	Listen(t, ft.Server, 2200)
	reach(t, "forward grant, local port", ft.Client, ServerClient4, 2200, false)
	expire(t, ft)
	reach(t, "after expiry, client", ft.Client, ServerClient4, 8080, false)
}

// TestForwardDNAT: a plain nft DNAT in the router's own table (the host's
// port 8081 to backend 1's 81), and a local door beside it: a local grant
// does not open the forwarded port, a forward grant does not open the
// local one.
func TestForwardDNAT(t *testing.T) {
	ft := newFwdTopo(t)
	Listen(t, ft.B1, 81)
	Listen(t, ft.Server, 2200)
	nftLoadNS(t, ft.Server, `table ip router {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8081 dnat to 203.0.113.10:81
	}
}`)
	reach(t, "before sesame, stranger", ft.Stranger, ServerStranger4, 8081, true)
	d := StartDaemon(t, ft.Server, fwdConfig(`"8081/tcp"`))
	reach(t, "before the knock, client", ft.Client, ServerClient4, 8081, false)

	Knock(t, ft.Client, ServerClient4.String(), "7100", "8100:udp", "9100")
	if _, err := d.WaitLog(3*time.Second, Msg(logevent.GrantApplied, "door", "ssh")); err != nil {
		t.Fatalf("no grant for the local knock: %v", err)
	}
	reach(t, "local grant, local port", ft.Client, ServerClient4, 2200, true)
	reach(t, "local grant, forwarded port", ft.Client, ServerClient4, 8081, false)

	knockApp(t, ft, d)
	reach(t, "forward grant, forwarded port", ft.Client, ServerClient4, 8081, true)
	reach(t, "forward grant, stranger", ft.Stranger, ServerStranger4, 8081, false)
	out := ft.Server.Exec(t, SesameBin, "status", "-c", d.Config)
	if !strings.Contains(out, "forward") || !strings.Contains(out, Client4.String()) {
		t.Errorf("status does not show the forward grant:\n%s", out)
	}
	expire(t, ft)
	// The local grant has expired too (same open_for): the local port is
	// shut, and the forward grant never opened it.
	reach(t, "after expiry, local port", ft.Client, ServerClient4, 2200, false)
	reach(t, "after expiry, forwarded port", ft.Client, ServerClient4, 8081, false)

	// sesame grant opens a door's forward targets (its manual sets),
	// sesame revoke closes them.
	ft.Server.Exec(t, SesameBin, "grant", "-c", d.Config, "--for", "1m", "app", Stranger4.String())
	reach(t, "manual grant, stranger", ft.Stranger, ServerStranger4, 8081, true)
	reach(t, "manual grant of the stranger, client", ft.Client, ServerClient4, 8081, false)
	ft.Server.Exec(t, SesameBin, "revoke", "-c", d.Config, "app", Stranger4.String())
	reach(t, "after revoke, stranger", ft.Stranger, ServerStranger4, 8081, false)
	if out := ft.Server.Exec(t, SesameBin, "check", "--ruleset", "-c", d.Config); !strings.Contains(out, "chain forward {") ||
		!strings.Contains(out, "ct status dnat meta l4proto tcp ct original proto-dst 8081 ip saddr @fmanual4_app accept") {
		t.Errorf("check --ruleset does not show the forward chain:\n%s", out)
	}
}

// TestForwardRouted: routed backends without DNAT, IPv4 and IPv6; traffic
// between the backends (entering on an inside interface) is never touched.
func TestForwardRouted(t *testing.T) {
	ft := newFwdTopo(t)
	Listen(t, ft.B1, 2222)
	d := StartDaemon(t, ft.Server, fwdConfig(`"203.0.113.10:2222/tcp", "[2001:db8:5::10]:2222/tcp"`))
	for _, a := range []netip.Addr{backend1, backend16} {
		reach(t, "before the knock, client", ft.Client, a, 2222, false)
		reach(t, "before the knock, stranger", ft.Stranger, a, 2222, false)
		reach(t, "container to container", ft.B2, a, 2222, true)
	}
	// An emptied forward chain is noticed and put back.
	ft.Server.Exec(t, "nft", "flush", "chain", "inet", "sesame", "forward")
	if _, err := d.WaitLog(3*time.Second, Msg(logevent.TableRestored)); err != nil {
		t.Fatalf("forward chain not restored: %v", err)
	}
	reach(t, "after the restore, stranger", ft.Stranger, backend1, 2222, false)
	knockApp(t, ft, d)
	reach(t, "after the knock, client v4", ft.Client, backend1, 2222, true)
	// The IPv4 knock granted the client's IPv4 address only.
	reach(t, "after an IPv4 knock, client v6", ft.Client, backend16, 2222, false)
	Knock(t, ft.Client, "-6", ServerClient6.String(), "7000", "8000:udp", "9000")
	if !Poll(3*time.Second, func() bool { return len(fwdGrants(t, ft.Server, "fpend6_app")) > 0 }) {
		t.Fatal("no pending IPv6 forward grant")
	}
	reach(t, "after the knock, client v6", ft.Client, backend16, 2222, true)
	for _, a := range []netip.Addr{backend1, backend16} {
		reach(t, "after the knock, stranger", ft.Stranger, a, 2222, false)
	}
	if got := fwdGrants(t, ft.Server, "fwd6_app"); len(got) != 1 || got[0] != Client6 {
		t.Errorf("fwd6_app = %v, want the client's confirmed IPv6 grant", got)
	}
	// A port of the backend that no door guards is not sesame's business.
	Listen(t, ft.B1, 2223)
	reach(t, "unguarded port, stranger", ft.Stranger, backend1, 2223, true)
	expire(t, ft)
	for _, a := range []netip.Addr{backend1, backend16} {
		reach(t, "after expiry, client", ft.Client, a, 2222, false)
		reach(t, "after expiry, container to container", ft.B2, a, 2222, true)
	}
}

// nftLoadNS feeds text to nft -f - in ns.
func nftLoadNS(t *testing.T, ns *nstest.NS, text string) {
	t.Helper()
	cmd := ns.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
}

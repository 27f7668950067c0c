package e2e

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// Fleet mode (issue 14) end to end: a hub namespace routes between hosts,
// a client and a stranger, and runs a 3-node JetStream cluster of the real
// nats-server binary with the permissions of docs/fleet/nats-server.conf;
// each host runs the real sesame run with its own member key.

// The documented example's fleet (docs/fleet/nats-server.conf): the tests
// use its fleet, group and member names so that its permissions apply as
// written.
const (
	FleetName  = "prod"
	FleetGroup = "web"
)

// FleetMembers are the documented example's members, one per host.
var FleetMembers = []string{"bastion-1", "web-1", "web-2", "web-3", "web-4"}

// The cluster's client and route addresses, on the hub's loopback: two
// IPv4 nodes and one IPv6 node (a nats-server listens on one address).
var NatsAddrs = []netip.Addr{
	netip.MustParseAddr("192.0.2.10"),
	netip.MustParseAddr("192.0.2.11"),
	netip.MustParseAddr("2001:db8:a::12"),
}

// NATS ports.
const (
	NatsClientPort = 4222
	NatsRoutePort  = 6222
)

// NatsURLs are the cluster's client URLs, as sesame.hcl's fleet.nats.servers.
func NatsURLs() []string {
	var out []string
	for _, a := range NatsAddrs {
		out = append(out, "nats://"+netip.AddrPortFrom(a, NatsClientPort).String())
	}
	return out
}

// FleetHostLink is host i's (0-based) link to the hub: 198.51.100.16(i+1)/28
// and 2001:db8:1(i+1)::/64, the hub at .1, the host at .2.
func FleetHostLink(i int) nstest.Link {
	base := 16 * (i + 1)
	return nstest.Link{
		IfServer: fmt.Sprintf("h-%d", i+1),
		Server4:  netip.AddrFrom4([4]byte{198, 51, 100, byte(base + 1)}),
		Peer4:    netip.AddrFrom4([4]byte{198, 51, 100, byte(base + 2)}),
		Server6:  netip.MustParseAddr(fmt.Sprintf("2001:db8:1%x::1", i+1)),
		Peer6:    netip.MustParseAddr(fmt.Sprintf("2001:db8:1%x::2", i+1)),
		Bits4:    28,
	}
}

// The client's and the stranger's links to the hub.
var (
	FleetClientLink = nstest.Link{IfServer: "h-cli",
		Server4: netip.MustParseAddr("203.0.113.1"), Peer4: netip.MustParseAddr("203.0.113.2"),
		Server6: netip.MustParseAddr("2001:db8:c1::1"), Peer6: netip.MustParseAddr("2001:db8:c1::2"), Bits4: 28}
	FleetStrangerLink = nstest.Link{IfServer: "h-str",
		Server4: netip.MustParseAddr("203.0.113.17"), Peer4: netip.MustParseAddr("203.0.113.18"),
		Server6: netip.MustParseAddr("2001:db8:c2::1"), Peer6: netip.MustParseAddr("2001:db8:c2::2"), Bits4: 28}
)

// FleetTopo is the hub, the hosts, the client and the stranger, joined.
type FleetTopo struct {
	Hub              *nstest.NS
	Hosts            []*nstest.NS
	Client, Stranger *nstest.NS
}

// NewFleetTopo creates the hub (a router: forwarding on, and addresses
// kept when a link goes down, so that a cut link heals by setting it up)
// and n hosts, the client and the stranger, each on a veth pair to the hub
// with default routes through it. Everything is deleted when the test ends.
func NewFleetTopo(t testing.TB, n int) *FleetTopo {
	t.Helper()
	ft := &FleetTopo{Hub: nstest.New(t, "hub")}
	ft.Hub.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1")
	for _, a := range NatsAddrs {
		bits := "/32"
		if a.Is6() {
			bits = "/128"
		}
		ft.Hub.Exec(t, "ip", "addr", "add", a.String()+bits, "dev", "lo")
	}
	join := func(tag string, l nstest.Link) *nstest.NS {
		ns := nstest.New(t, tag)
		if err := nstest.Join(ft.Hub, ns, l); err != nil {
			t.Fatal(err)
		}
		if err := nstest.RouteVia(ns, l); err != nil {
			t.Fatal(err)
		}
		return ns
	}
	for i := range n {
		ft.Hosts = append(ft.Hosts, join(fmt.Sprintf("h%d", i+1), FleetHostLink(i)))
	}
	ft.Client = join("cli", FleetClientLink)
	ft.Stranger = join("str", FleetStrangerLink)
	return ft
}

// Cut sets host i's link down at the hub (the host is cut off from the
// cluster and everyone), or up again.
func (ft *FleetTopo) Cut(t testing.TB, i int, cut bool) {
	t.Helper()
	state := "up"
	if cut {
		state = "down"
	}
	ft.Hub.Exec(t, "ip", "link", "set", FleetHostLink(i).IfServer, state)
}

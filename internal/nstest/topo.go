package nstest

import (
	"cmp"
	"net/netip"
	"strconv"
)

// The topology of the e2e tests and the benchmark: a server joined by veth
// pairs to a client and (e2e only) a stranger. Documentation ranges only.
var (
	ServerClient4   = netip.MustParseAddr("192.0.2.1")
	Client4         = netip.MustParseAddr("192.0.2.2")
	ServerClient6   = netip.MustParseAddr("2001:db8:1::1")
	Client6         = netip.MustParseAddr("2001:db8:1::2")
	ServerStranger4 = netip.MustParseAddr("198.51.100.1")
	Stranger4       = netip.MustParseAddr("198.51.100.2")
	ServerStranger6 = netip.MustParseAddr("2001:db8:2::1")
	Stranger6       = netip.MustParseAddr("2001:db8:2::2")
)

// Interface names. The server's are the ones the daemon captures on.
const (
	IfServerToClient   = "s-cli"
	IfServerToStranger = "s-str"
	IfPeer             = "eth-srv" // the client's and the stranger's link to the server
)

// Link is one veth pair from the server to a peer, with an IPv4 /24 (or
// /Bits4) and an IPv6 /64 on each end.
type Link struct {
	IfServer       string // the server's end; the peer's is IfPeer
	Server4, Peer4 netip.Addr
	Server6, Peer6 netip.Addr
	Bits4          int // the IPv4 prefix length; 0 means 24
}

// The server's links to the client and to the stranger.
var (
	ClientLink   = Link{IfServerToClient, ServerClient4, Client4, ServerClient6, Client6, 0}
	StrangerLink = Link{IfServerToStranger, ServerStranger4, Stranger4, ServerStranger6, Stranger6, 0}
)

// The forward-door topology of the e2e tests and the benchmark: the server
// routes to backends (the "containers") on links of their own, the two
// halves of 203.0.113.0/24 and an IPv6 /64 each.
var (
	Backend1Link = Link{"s-b1", netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.10"),
		netip.MustParseAddr("2001:db8:5::1"), netip.MustParseAddr("2001:db8:5::10"), 25}
	Backend2Link = Link{"s-b2", netip.MustParseAddr("203.0.113.129"), netip.MustParseAddr("203.0.113.130"),
		netip.MustParseAddr("2001:db8:6::1"), netip.MustParseAddr("2001:db8:6::10"), 25}
)

// Join creates l's veth pair between server and peer, directly inside the
// namespaces (the root namespace never sees it), addresses it without
// duplicate address detection and sets both ends up.
func Join(server, peer *NS, l Link) error {
	bits4 := "/" + strconv.Itoa(cmp.Or(l.Bits4, 24))
	steps := []struct {
		ns   *NS
		args []string
	}{
		{server, []string{"ip", "link", "add", l.IfServer, "type", "veth", "peer", "name", IfPeer, "netns", peer.Name}},
		{server, []string{"ip", "addr", "add", l.Server4.String() + bits4, "dev", l.IfServer}},
		{server, []string{"ip", "addr", "add", l.Server6.String() + "/64", "dev", l.IfServer, "nodad"}},
		{server, []string{"ip", "link", "set", l.IfServer, "up"}},
		{peer, []string{"ip", "addr", "add", l.Peer4.String() + bits4, "dev", IfPeer}},
		{peer, []string{"ip", "addr", "add", l.Peer6.String() + "/64", "dev", IfPeer, "nodad"}},
		{peer, []string{"ip", "link", "set", IfPeer, "up"}},
	}
	for _, s := range steps {
		if _, err := s.ns.Run(s.args[0], s.args[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// RouteVia gives peer default routes through the server's end of l, IPv4
// and IPv6.
func RouteVia(peer *NS, l Link) error {
	if _, err := peer.Run("ip", "route", "add", "default", "via", l.Server4.String()); err != nil {
		return err
	}
	_, err := peer.Run("ip", "-6", "route", "add", "default", "via", l.Server6.String())
	return err
}

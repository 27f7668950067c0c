package client

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sesame-knock/sesame/spa"
)

// SPA is one SPA request: what to ask the server for, and with which keys.
type SPA struct {
	Keys   spa.Keys
	User   string       // the user name in the message; "" is "sesame"
	Access []spa.Access // ports to open, fwknop's order
	// For asks for this grant time (message type 3, capped by the door's
	// max_open_for); 0 asks for the door's open_for (type 1).
	For time.Duration
	// Addr is the address to open for, written in the message. The zero
	// Addr means this host's source address towards the server; with
	// Source, the packet's own source (0.0.0.0 or ::, for clients behind
	// NAT).
	Addr   netip.Addr
	Source bool
}

// SendSPA encodes req for time now and sends it to server in one UDP
// datagram. It returns the message as sent and the datagram's size.
func SendSPA(server netip.AddrPort, req SPA, now time.Time) (spa.Message, int, error) {
	m := spa.Message{User: req.User, Type: spa.TypeAccess, Access: req.Access}
	if m.User == "" {
		m.User = "sesame"
	}
	if req.For > 0 {
		m.Type, m.ClientTimeout = spa.TypeClientTimeoutAccess, req.For
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return m, 0, fmt.Errorf("%s: %w", server, err)
	}
	defer conn.Close()
	switch {
	case req.Source && server.Addr().Is4():
		m.Addr = netip.IPv4Unspecified()
	case req.Source:
		m.Addr = netip.IPv6Unspecified()
	case req.Addr.IsValid():
		m.Addr = req.Addr.Unmap()
	default:
		m.Addr = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	}
	wire, err := spa.Encode(req.Keys, m, rand.Reader, now)
	if err != nil {
		return m, 0, err
	}
	if _, err := conn.Write([]byte(wire)); err != nil {
		return m, 0, fmt.Errorf("send to %s: %w", server, err)
	}
	return m, len(wire), nil
}

package knock

import (
	"net/netip"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// Hit is one packet that arrived at this host, as the matcher sees it:
// decoded from a frame by package capture, or made up by a test.
type Hit struct {
	Src   netip.Addr   // source address (IPv4 or IPv6, unmapped)
	Dst   netip.Addr   // destination address, one of this host's
	Proto policy.Proto // policy.TCP or policy.UDP
	Port  uint16       // destination port
	Flags uint8        // TCP flags (policy.FlagSYN ...); 0 for UDP
	At    time.Time    // capture time; informational, Observe takes now

	// Payload is a UDP packet's payload when capture read all of it (SPA
	// ports), else nil. It ALIASES the capture read buffer: valid only until
	// the next read on that socket, never to be kept or passed to another
	// goroutine. The matcher ignores it; the daemon clears it before a Hit
	// leaves the reader goroutine.
	Payload []byte
}

// Step returns the hit's destination as a port/protocol pair.
func (h Hit) Step() policy.PortProto { return policy.PortProto{Port: h.Port, Proto: h.Proto} }

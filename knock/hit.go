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
}

// Step returns the hit's destination as a port/protocol pair.
func (h Hit) Step() policy.PortProto { return policy.PortProto{Port: h.Port, Proto: h.Proto} }

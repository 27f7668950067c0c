package policy

import (
	"fmt"
	"time"

	"github.com/sesame-knock/sesame/spa"
)

// TOTP is a door whose knock sequence is derived from each client's secret
// and the time (package totp, docs/TOTP.md): Length distinct ports of Proto
// in Lo..Hi, a new sequence every Step, accepted Skew steps either side of
// now, each usable once.
type TOTP struct {
	Lo, Hi uint16
	Length int
	Step   time.Duration // whole seconds
	Skew   int
	Proto  Proto
}

// Ports returns the number of ports in the range.
func (t *TOTP) Ports() int { return int(t.Hi) - int(t.Lo) + 1 }

// Client is one holder of a TOTP door's secret, or of an SPA door's keys.
type Client struct {
	Name       string
	SecretFile string // TOTP: as resolved (relative paths from the config's directory)
	Secret     []byte // TOTP: decoded, at least 16 bytes

	KeyFile      string   // SPA: as resolved
	Keys         spa.Keys // SPA: the client's keys, hmac_digest applied
	AllowOtherIP bool     // SPA: grant an embedded address other than the packet's source
}

// OneTimeSeq is one unused line of a one_time_sequences file.
type OneTimeSeq struct {
	Line  int // 1-based line in the file
	Steps []PortProto
	Key   string // onetime.Seq.Key: what the door's state file records once used
}

// PortRange is an inclusive range of ports of one protocol.
type PortRange struct {
	Lo, Hi uint16
	Proto  Proto
}

// Contains reports whether pp falls in the range.
func (r PortRange) Contains(pp PortProto) bool {
	return pp.Proto == r.Proto && pp.Port >= r.Lo && pp.Port <= r.Hi
}

// String returns "20000-29999/tcp".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d/%s", r.Lo, r.Hi, r.Proto) }

// KnockRanges returns the port ranges of TOTP doors, in door order: what
// the capture filter passes besides KnockPorts.
func (p *Policy) KnockRanges() []PortRange {
	var out []PortRange
	for _, d := range p.Doors {
		if d.TOTP != nil {
			out = append(out, PortRange{Lo: d.TOTP.Lo, Hi: d.TOTP.Hi, Proto: d.TOTP.Proto})
		}
	}
	return out
}

// TOTP defaults and bounds, stated in validation errors; sesame knock --totp
// uses the same defaults.
const (
	DefaultTOTPLo     = 20000
	DefaultTOTPHi     = 29999
	DefaultTOTPLength = 4
	DefaultTOTPStep   = 30 * time.Second
	DefaultTOTPSkew   = 1
	MinTOTPStep       = 5 * time.Second
	MaxTOTPStep       = time.Hour
	MaxTOTPSkew       = 10
	MinTOTPLength     = 2
	MaxTOTPLength     = MaxSequence
)

package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/spa"
	"github.com/sesame-knock/sesame/totp"
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

func (v *validator) totpBlock(rd *rawDoor, rt *rawTOTP, d *Door) {
	t := &TOTP{Lo: DefaultTOTPLo, Hi: DefaultTOTPHi, Length: DefaultTOTPLength, Step: DefaultTOTPStep, Skew: DefaultTOTPSkew, Proto: TCP}
	ok := true
	if rt.PortRange != nil {
		if s, sok := v.str(rt.PortRange, allowPortRange); sok {
			lo, hi, err := ParsePortRange(s)
			if err != nil {
				v.add(errorf(rt.PortRange.Expr.Range(), "Invalid port_range", "%v: port_range is %s.", err, allowPortRange))
				ok = false
			} else {
				t.Lo, t.Hi = lo, hi
			}
		} else {
			ok = false
		}
	}
	if rt.Length != nil {
		n, nok := v.integer(rt.Length, MinTOTPLength, MaxTOTPLength)
		ok = ok && nok
		t.Length = n
	}
	if rt.Skew != nil {
		n, nok := v.integer(rt.Skew, 0, MaxTOTPSkew)
		ok = ok && nok
		t.Skew = n
	}
	if rt.Step != nil {
		s, sok := v.duration(rt.Step, DefaultTOTPStep, MinTOTPStep, MaxTOTPStep)
		if sok && s%time.Second != 0 {
			v.add(errorf(rt.Step.Expr.Range(), "Invalid step", "step is %s; it must be a whole number of seconds (the counter is unix seconds / step).", s))
			sok = false
		}
		ok = ok && sok
		t.Step = s
	}
	if rt.Protocol != nil {
		if s, sok := v.str(rt.Protocol, allowProtocol); sok {
			p, err := ParseProto(s)
			if err != nil {
				v.add(errorf(rt.Protocol.Expr.Range(), "Invalid protocol", "%v: protocol is %s.", err, allowProtocol))
				ok = false
			}
			t.Proto = p
		} else {
			ok = false
		}
	}
	if !ok {
		return
	}
	if bits := totp.EntropyBits(t.Ports(), t.Length); bits < totp.MinEntropyBits {
		rng := rt.DefRange
		if rt.Length != nil {
			rng = rt.Length.Expr.Range()
		} else if rt.PortRange != nil {
			rng = rt.PortRange.Expr.Range()
		}
		v.add(errorf(rng, "TOTP knock too easy to guess", "Door %q's per-knock entropy is %.1f bits (log2 of the %d-port ordered sequences of distinct ports among %d ports); at least %.0f bits are required. Widen port_range or raise length.", rd.Name, bits, t.Length, t.Ports(), totp.MinEntropyBits))
		return
	}
	d.TOTP = t
	if len(rd.Clients) == 0 {
		v.add(errorf(rt.DefRange, "TOTP door without client", "Door %q has a totp block but no client; add client \"NAME\" { secret_file = \"/etc/sesame/NAME.key\" } blocks.", rd.Name))
	}
	v.clients(rd, d, v.client)
}

// totpOpenOverlap refuses a TOTP range that holds a port the door opens: a
// connection to it would count as a knock.
func (v *validator) totpOpenOverlap(rd *rawDoor, d *Door) {
	if d.TOTP == nil {
		return
	}
	t := d.TOTP
	for _, o := range d.Open {
		if (PortRange{t.Lo, t.Hi, t.Proto}).Contains(o) {
			v.add(errorf(rd.TOTP[0].DefRange, "TOTP range holds an opened port", "port_range %d-%d/%s contains %s, which door %q opens: a connection to it would count as a knock. Move the range.", t.Lo, t.Hi, t.Proto, o, rd.Name))
			return
		}
	}
}

// totpSummary: "vault: totp 4 of 20000-29999/tcp, new every 30s, skew 1,
// 2 client(s), opens 2222/tcp for 30s".
func (d *Door) totpSummary(b *strings.Builder) {
	t := d.TOTP
	fmt.Fprintf(b, "%s: totp %d of %s, new every %s, skew %d, %d client(s)", d.Name, t.Length, PortRange{Lo: t.Lo, Hi: t.Hi, Proto: t.Proto}, fmtDur(t.Step), t.Skew, len(d.Clients))
	d.knockTail(b)
}

// totpNotGuarded: the door's port range holds no port that another door
// opens (its own are checked with the range: totpOpenOverlap).
func (v *validator) totpNotGuarded(rd *rawDoor, d *Door, i int, guarded map[PortProto]opener) {
	t := d.TOTP
	if len(rd.TOTP) == 0 {
		return
	}
	r := PortRange{Lo: t.Lo, Hi: t.Hi, Proto: t.Proto}
	for pp, o := range guarded {
		if o.idx != i && r.Contains(pp) {
			v.add(errorf(rd.TOTP[0].DefRange, "TOTP range holds a guarded port", "port_range %d-%d/%s contains %s, which door %q opens: a connection to it would count as a knock. Move the range.", t.Lo, t.Hi, t.Proto, pp, o.door))
			return
		}
	}
}

package knock

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// t0 is the fake clock's origin; events are given as offsets from it.
var t0 = time.Unix(1_700_000_000, 0)

const (
	syn    = policy.FlagSYN
	ack    = policy.FlagACK
	fin    = policy.FlagFIN
	synAck = policy.FlagSYN | policy.FlagACK
)

// pp parses "7000/tcp", "8000/udp" or "7000" (tcp).
func pp(s string) policy.PortProto {
	port, proto, _ := strings.Cut(s, "/")
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		panic(err)
	}
	p := policy.TCP
	if proto == "udp" {
		p = policy.UDP
	}
	return policy.PortProto{Port: uint16(n), Proto: p}
}

// pps parses a comma-separated list of ports; "" gives nil.
func pps(s string) []policy.PortProto {
	if s == "" {
		return nil
	}
	var out []policy.PortProto
	for f := range strings.SplitSeq(s, ",") {
		out = append(out, pp(f))
	}
	return out
}

// door builds a door with the default flags and a 5s seq_timeout.
func door(name, seq, closeSeq string) policy.Door {
	return policy.Door{
		Name: name, Sequence: pps(seq), CloseSequence: pps(closeSeq),
		SeqTimeout: 5 * time.Second, TCPFlags: policy.DefaultTCPFlags,
		Open: pps("22/tcp"), OpenFor: 30 * time.Second,
	}
}

func pol(doors ...policy.Door) *policy.Policy { return &policy.Policy{Doors: doors} }

// ev is one event of a scenario: a hit, or a call to Expire.
type ev struct {
	at     time.Duration // since t0
	src    string
	port   string // "7000/tcp"; "" with expire
	flags  uint8
	expire bool
}

func hitEv(at time.Duration, src, port string, flags uint8) ev {
	return ev{at: at, src: src, port: port, flags: flags}
}

// s is a TCP SYN (or a UDP datagram, for a "/udp" port).
func s(at time.Duration, src, port string) ev {
	if strings.HasSuffix(port, "/udp") {
		return hitEv(at, src, port, 0)
	}
	return hitEv(at, src, port, syn)
}

func expireAt(at time.Duration) ev { return ev{at: at, expire: true} }

func (e ev) hit() Hit {
	p := pp(e.port)
	return Hit{Src: netip.MustParseAddr(e.src), Proto: p.Proto, Port: p.Port, Flags: e.flags, At: t0.Add(e.at)}
}

// show renders a decision for comparison, with the index of the event that
// produced it: "#2 reset ssh 198.51.100.2 2/3 9999/tcp other-port".
func show(i int, d Decision) string {
	name := d.Door.Name
	if d.Close {
		name += "(close)"
	}
	out := fmt.Sprintf("#%d %s %s %s %d/%d", i, d.Kind, name, d.Src, d.Stage, d.Of)
	if d.Hit != (policy.PortProto{}) {
		out += " " + d.Hit.String()
	}
	if d.Reason != NoReason {
		out += " " + d.Reason.String()
	}
	return out
}

// run plays events on m and renders every decision.
func run(t *testing.T, m *Matcher, evs []ev) []string {
	t.Helper()
	var got []string
	for i, e := range evs {
		var ds []Decision
		if e.expire {
			ds = m.Expire(t0.Add(e.at))
		} else {
			ds = m.Observe(e.hit(), t0.Add(e.at))
		}
		for _, d := range ds {
			got = append(got, show(i, d))
		}
	}
	return got
}

package fleet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// Reason says why a receiver refused a record: one per condition of the
// fleet contract (issue 14, "A receiver applies a record only
// if all of these hold"). Decide checks all but the rate cap per origin,
// which Limiter.Admit applies to what Decide lets through.
type Reason uint8

// The reasons, in the order Decide checks them. Cheap checks against the
// receiver's own config come before the signature, so that records meant
// for others cost no Ed25519 verification.
const (
	ReasonNone            Reason = iota // applied
	ReasonTooBig                        // larger than MaxEnvelope
	ReasonBadJSON                       // not a well-formed envelope or payload
	ReasonBadVersion                    // envelope version other than 1
	ReasonOtherFleet                    // fleet is not the receiver's
	ReasonNotMyGroup                    // group is not one of the receiver's
	ReasonUnknownMember                 // origin is not in members.hcl
	ReasonSignerNotOrigin               // signed, or delivered, by another member than the origin
	ReasonBadSignature                  // the origin's key does not verify it
	ReasonNotAllowed                    // the origin's may_grant does not cover group and door
	ReasonUnknownDoor                   // the receiver has no such door
	ReasonPortsNotInOpen                // a port is not in the receiver's door's open
	ReasonBadSrc                        // src is not an IP address
	ReasonFromTheFuture                 // issued_at > now + max_skew
	ReasonExpired                       // not_after <= now (or less than 1 ms left)
	ReasonTooLong                       // not_after - issued_at > the receiver's open_for
	ReasonReplayedID                    // the origin's id was applied before
	ReasonRateLimited                   // the origin is over its rate cap (Limiter)
	ReasonClockUnsynced                 // the receiver's clock is unsynchronised (Receiver.Unsynced)
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:            "none",
	ReasonTooBig:          "too-big",
	ReasonBadJSON:         "bad-json",
	ReasonBadVersion:      "bad-version",
	ReasonOtherFleet:      "other-fleet",
	ReasonNotMyGroup:      "not-my-group",
	ReasonUnknownMember:   "unknown-member",
	ReasonSignerNotOrigin: "signer-not-origin",
	ReasonBadSignature:    "bad-signature",
	ReasonNotAllowed:      "not-allowed",
	ReasonUnknownDoor:     "unknown-door",
	ReasonPortsNotInOpen:  "ports-not-in-open",
	ReasonBadSrc:          "bad-src",
	ReasonFromTheFuture:   "from-the-future",
	ReasonExpired:         "expired",
	ReasonTooLong:         "too-long",
	ReasonReplayedID:      "replayed-id",
	ReasonRateLimited:     "rate-limited",
	ReasonClockUnsynced:   "clock-unsynced",
}

// String returns the reason as logs and metrics label it, e.g. "expired".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reasons returns every refusal reason (not ReasonNone), for metrics.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// Door is what a receiver knows of one of its own doors.
type Door struct {
	Open    []policy.PortProto
	OpenFor time.Duration
}

// Self is the receiver's own view: its fleet, the groups whose grants it
// applies, its doors by name, and the clock skew it tolerates.
type Self struct {
	Fleet   string
	Groups  []string
	Doors   map[string]Door
	MaxSkew time.Duration
}

// DoorsOf returns the doors of p as a receiver sees them.
func DoorsOf(p *policy.Policy) map[string]Door {
	out := make(map[string]Door, len(p.Doors))
	for _, d := range p.Doors {
		out[d.Name] = Door{Open: d.Open, OpenFor: d.OpenFor}
	}
	return out
}

// Decision is the receiver's verdict on one record. Reason is ReasonNone
// when it applies; otherwise the record is refused and only Reason, Err
// and the payload's fields as received (Origin, DoorName, SrcText; not
// verified when the refusal came before the signature) are set, for the
// log line.
type Decision struct {
	Reason Reason
	Err    error // what Decode said, for too-big, bad-json, bad-version

	Kind     string // KindOpen or KindClose
	Origin   string
	ID       string
	DoorName string
	SrcText  string

	Src      netip.Addr
	Ports    []policy.PortProto
	IssuedAt time.Time
	NotAfter time.Time
	// Timeout is the kernel timeout of an open: min(not_after - now,
	// open_for), whole milliseconds, at least 1 ms.
	Timeout time.Duration
	// Comment names the grant's door, origin and id prefix,
	// "fleet:DOOR:ORIGIN:IDPREFIX".
	Comment string
}

// Applies reports whether the record is to be applied.
func (d Decision) Applies() bool { return d.Reason == ReasonNone }

func decodeReason(err error) Reason {
	switch {
	case errors.Is(err, ErrTooBig):
		return ReasonTooBig
	case errors.Is(err, ErrVersion):
		return ReasonBadVersion
	}
	return ReasonBadJSON
}

// commentIDLen is how much of the id a grant's comment carries.
const commentIDLen = 4

// Decide checks a decoded record against the members file, the receiver's
// own view and clock, and the ids already applied. It reads seen and does
// not change it: a caller that applies the decision remembers it with
// seen.Add(d.Origin, d.ID, d.NotAfter). env.From, when the transport set
// it, must be the origin. A close record passes the same checks as an open
// and then removes what the origin's earlier record added.
func Decide(env Envelope, m *Members, self Self, now time.Time, seen *Seen) Decision {
	p := env.Payload
	d := Decision{Kind: p.Kind, Origin: p.Origin, ID: p.ID, DoorName: p.Door, SrcText: p.Src}
	refuse := func(r Reason) Decision { d.Reason = r; return d }

	if p.Fleet != self.Fleet {
		return refuse(ReasonOtherFleet)
	}
	if !slices.Contains(self.Groups, p.Group) {
		return refuse(ReasonNotMyGroup)
	}
	origin := m.Member(p.Origin)
	if origin == nil {
		return refuse(ReasonUnknownMember)
	}
	if !env.Verify(origin.Key) {
		// Another member's signature over the record, or a valid one
		// delivered under another member's name, is a member writing as
		// another: say so rather than "bad signature".
		if from := m.Member(env.From); from != nil && from != origin && env.Verify(from.Key) {
			return refuse(ReasonSignerNotOrigin)
		}
		return refuse(ReasonBadSignature)
	}
	if env.From != "" && env.From != p.Origin {
		return refuse(ReasonSignerNotOrigin)
	}
	if !origin.May(p.Group, p.Door) {
		return refuse(ReasonNotAllowed)
	}
	door, ok := self.Doors[p.Door]
	if !ok {
		return refuse(ReasonUnknownDoor)
	}
	d.Ports = make([]policy.PortProto, 0, len(p.Ports))
	for _, s := range p.Ports {
		pp, err := parsePort(s)
		if err != nil || !slices.Contains(door.Open, pp) {
			d.Ports = nil
			return refuse(ReasonPortsNotInOpen)
		}
		d.Ports = append(d.Ports, pp)
	}
	src, err := netip.ParseAddr(p.Src)
	if err != nil || src.Zone() != "" || src.Is4In6() || src.String() != p.Src {
		return refuse(ReasonBadSrc)
	}
	d.Src = src
	issued, notAfter := time.UnixMilli(p.IssuedAt), time.UnixMilli(p.NotAfter)
	if issued.After(now.Add(self.MaxSkew)) {
		return refuse(ReasonFromTheFuture)
	}
	left := notAfter.Sub(now).Truncate(time.Millisecond)
	if left < time.Millisecond { // a 0 ms kernel timeout would never expire
		return refuse(ReasonExpired)
	}
	if notAfter.Sub(issued) > door.OpenFor {
		return refuse(ReasonTooLong)
	}
	if seen.Has(p.Origin, p.ID) {
		return refuse(ReasonReplayedID)
	}
	d.IssuedAt, d.NotAfter = issued, notAfter
	d.Timeout = min(left, door.OpenFor)
	d.Comment = "fleet:" + p.Door + ":" + p.Origin + ":" + p.ID[:commentIDLen]
	return d
}

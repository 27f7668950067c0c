package knock

import (
	"fmt"
	"net/netip"

	"github.com/sesame-knock/sesame/policy"
)

// Kind says what a Decision reports.
type Kind uint8

// The kinds of decision. The zero Kind is not one of them.
const (
	Stage   Kind = iota + 1 // a step matched, the sequence is not complete
	Open                    // the open sequence completed: grant the door
	Close                   // the close sequence completed: revoke the door
	Reset                   // an out-of-order hit dropped the progress
	Timeout                 // seq_timeout passed since the first hit
)

// String returns the log text: "stage", "open", "close", "reset", "timeout".
func (k Kind) String() string {
	switch k {
	case Stage:
		return "stage"
	case Open:
		return "open"
	case Close:
		return "close"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reason says why a Reset happened. It is NoReason for every other Kind.
// Eviction of an entry when the table is full is not a decision (see
// Stats.Evicted).
type Reason uint8

// The reasons for a Reset.
const (
	NoReason  Reason = iota
	WrongPort        // a knock port of this host, out of order
	OtherPort        // a packet to a port that no sequence uses
	Replayed         // a TOTP sequence that was already used (burned)

	// NumReasons is the number of reasons: arrays indexed by Reason
	// (such as the daemon's counters) have this length, so that a new
	// reason gets a slot.
	NumReasons = iota
)

// String returns the log text: "wrong-port", "other-port", "replayed", or
// "" for NoReason.
func (r Reason) String() string {
	switch r {
	case NoReason:
		return ""
	case WrongPort:
		return "wrong-port"
	case OtherPort:
		return "other-port"
	case Replayed:
		return "replayed"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Decision is one thing the matcher concluded from a hit or a sweep.
//
// Stage and Of: for Stage, the steps matched so far and the sequence length;
// for Open and Close, both are the sequence length; for Reset and Timeout,
// the stage the source had reached when its progress was dropped.
type Decision struct {
	Kind   Kind
	Door   *policy.Door // points into the Policy given to New or Update
	Src    netip.Addr   // unmapped, without zone
	Close  bool         // concerns the door's close_sequence (Kind Close implies it)
	Stage  int
	Of     int
	Reason Reason           // for Reset only
	Hit    policy.PortProto // the port that caused it; zero for a Timeout from Expire
	Client string           // TOTP doors: the client whose sequence it is, when known
	// Counter is, for a TOTP door's Open, the time step of the sequence
	// that opened (with Door and Client, the burn: see TOTPMatcher.Unburn).
	Counter uint64
}

// Stats are the matcher's counters since New. Tracked is the current number
// of entries (Len); the others only grow.
type Stats struct {
	Tracked uint64 // (sequence, source) entries held now
	Evicted uint64 // entries dropped silently to make room for a new one
	Expired uint64 // Timeout decisions, from Observe or Expire
	Opens   uint64 // Open decisions
	Closes  uint64 // Close decisions
	Resets  uint64 // Reset decisions
}

package policy

import (
	"fmt"
	"strings"
)

// Kind is what sort of door a Door is: how a client proves it may open it.
// The set is closed: Kinds lists every kind, and Door.Kind is the one place
// that reads which of the per-kind fields of a Door is set. Each kind keeps
// its config block, validation, cross-door checks and summary in a file of
// its own (kind_static.go, kind_onetime.go, kind_totp.go, kind_spa.go);
// every switch over kinds has a case per kind, and tests iterate over Kinds
// to check that every package that handles doors handles each kind (see
// docs/design.md, "How to add a door kind").
type Kind uint8

// The door kinds. The zero Kind is not one of them.
const (
	KindStatic  Kind = iota + 1 // a fixed sequence (sequence = [...])
	KindOneTime                 // knockd's one_time_sequences: each line once
	KindTOTP                    // a sequence derived from a client's secret and the time
	KindSPA                     // one authenticated UDP packet (fwknop)
)

// Kinds returns every door kind, in declaration order.
func Kinds() []Kind { return []Kind{KindStatic, KindOneTime, KindTOTP, KindSPA} }

// String returns the name used in summaries and docs: "static",
// "one-time", "totp", "spa".
func (k Kind) String() string {
	switch k {
	case KindStatic:
		return "static"
	case KindOneTime:
		return "one-time"
	case KindTOTP:
		return "totp"
	case KindSPA:
		return "spa"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kind returns the door's kind. Validation makes exactly one of the
// per-kind fields set (TOTP, SPA, OneTimeFile), or none for a static door.
func (d *Door) Kind() Kind {
	switch {
	case d.TOTP != nil:
		return KindTOTP
	case d.SPA != nil:
		return KindSPA
	case d.OneTimeFile != "":
		return KindOneTime
	}
	return KindStatic
}

// Static reports whether the door opens on a fixed sequence: not TOTP, SPA
// or one-time. Only such a sequence can be completed by someone who has
// seen it once, from any address they care to spoof.
func (d *Door) Static() bool { return d.Kind() == KindStatic }

// Steps returns how many packets a knock on the door takes: the length of
// its sequence (a one-time door's next one; 0 when it has none left), of
// its TOTP sequences, or 1 for an SPA door.
func (d *Door) Steps() int {
	switch d.Kind() {
	case KindStatic, KindOneTime:
		return len(d.Sequence)
	case KindTOTP:
		return d.TOTP.Length
	case KindSPA:
		return 1
	}
	panic("policy: unknown door kind " + d.Kind().String())
}

// summary writes the door's line of Policy.Summary, without the newline.
func (d *Door) summary(b *strings.Builder) {
	switch d.Kind() {
	case KindStatic:
		d.staticSummary(b)
	case KindOneTime:
		d.oneTimeSummary(b)
	case KindTOTP:
		d.totpSummary(b)
	case KindSPA:
		d.spaSummary(b)
	default:
		panic("policy: unknown door kind " + d.Kind().String())
	}
}

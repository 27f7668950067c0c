package spa

import (
	"errors"
	"fmt"
)

// Reason says why a packet was refused, in a form fit for a log field
// (reason=bad-hmac). It is also an error, so errors.Is(err, ReasonBadHMAC)
// works on what Verify returns.
type Reason string

// Refusal reasons.
const (
	ReasonBadLength       Reason = "bad-length"       // shorter or longer than any SPA packet
	ReasonBadEncoding     Reason = "bad-encoding"     // not fwknop's base64 alphabet or layout
	ReasonGPGRefused      Reason = "gpg-refused"      // fwknop GPG mode (wire starts with "hQ")
	ReasonBadHMAC         Reason = "bad-hmac"         // wrong key, wrong digest type, no or truncated HMAC, legacy mode
	ReasonReplay          Reason = "replay"           // seen before, inside the age window
	ReasonDecrypt         Reason = "decrypt"          // HMAC fine but no text decrypts: wrong encryption key, bad ciphertext
	ReasonBadMessage      Reason = "bad-message"      // plaintext fields malformed
	ReasonBadDigest       Reason = "bad-digest"       // inner digest does not match
	ReasonCommandRefused  Reason = "command-refused"  // type 0: command execution is never done
	ReasonNATRefused      Reason = "nat-refused"      // types 2, 4, 5, 6
	ReasonUnsupportedType Reason = "unsupported-type" // any other type
	ReasonTooOld          Reason = "too-old"          // timestamp before now-MaxAge
	ReasonTooNew          Reason = "too-new"          // timestamp after now+MaxAge
)

// Error implements error, so a Reason can be the target of errors.Is.
func (r Reason) Error() string { return string(r) }

// Error is a refused packet: the reason, and details for humans.
type Error struct {
	Reason Reason
	Err    error // details; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "spa: " + string(e.Reason)
	}
	return "spa: " + string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the details.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Reason.
func (e *Error) Is(target error) bool {
	r, ok := target.(Reason)
	return ok && r == e.Reason
}

// ReasonOf returns the Reason of a refusal, or "" when err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}

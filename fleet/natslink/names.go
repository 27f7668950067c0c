package natslink

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/policy"
)

// Naming, shared by every host of a fleet (docs/design.md, "Fleet"):
// the records of group G of fleet F live in the KV bucket sesame_F_G
// (stream KV_sesame_F_G) under the key "<member>.<id>", and the bucket
// republishes each of them to the subject sesame.F.G.<member>.<id>.

// Bucket returns the KV bucket of a group: sesame_<fleet>_<group>.
func Bucket(fleet, group string) string { return "sesame_" + fleet + "_" + group }

// Stream returns the JetStream stream behind a group's bucket.
func Stream(fleet, group string) string { return "KV_" + Bucket(fleet, group) }

// Key returns the key a member writes a record under: "<member>.<id>".
func Key(member, id string) string { return member + "." + id }

// SubjectPrefix returns the subject prefix the bucket of a group
// republishes to, "sesame.<fleet>.<group>." (a record's subject is this
// prefix then its key).
func SubjectPrefix(fleet, group string) string { return "sesame." + fleet + "." + group + "." }

// ParseKey splits a key into the member that wrote it and the record id.
// Both must be valid: a member name (letters, digits, "_" and "-", at
// most 64, not starting with "_" or "-") and an id of 32 lowercase hex
// digits, as fleet.NewID makes.
func ParseKey(key string) (member, id string, ok bool) {
	member, id, ok = strings.Cut(key, ".")
	if !ok || !ValidName(member) || !validID(id) {
		return "", "", false
	}
	return member, id, true
}

// parseSubject returns the member and id of a republished record's
// subject, which must start with prefix (SubjectPrefix of its group).
func parseSubject(prefix, subject string) (member, id string, ok bool) {
	key, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return "", "", false
	}
	return ParseKey(key)
}

// ValidName reports whether s is a valid fleet, member or group name
// (policy.ValidFleetName): it is then a single, literal NATS subject token.
func ValidName(s string) bool { return policy.ValidFleetName(s) }

// validID reports whether id is a record id (fleet.ValidID).
func validID(id string) bool { return fleet.ValidID(id) }

// Validate checks a Config: valid names, at least one group and one
// server, each server a nats:// or tls:// URL, no group twice.
func (c Config) Validate() error {
	var errs []error
	if !ValidName(c.Fleet) {
		errs = append(errs, fmt.Errorf("fleet name %q is not valid (letters, digits, _ and -, at most 64)", c.Fleet))
	}
	if !ValidName(c.Member) {
		errs = append(errs, fmt.Errorf("member name %q is not valid (letters, digits, _ and -, at most 64)", c.Member))
	}
	if len(c.Receive) == 0 && len(c.Publish) == 0 {
		errs = append(errs, errors.New("no group to receive or publish"))
	}
	for _, list := range []struct {
		what   string
		groups []string
	}{{"receive", c.Receive}, {"publish", c.Publish}} {
		for i, g := range list.groups {
			if !ValidName(g) {
				errs = append(errs, fmt.Errorf("%s group %q is not valid (letters, digits, _ and -, at most 64)", list.what, g))
			} else if slices.Index(list.groups, g) != i {
				errs = append(errs, fmt.Errorf("%s group %q is listed twice", list.what, g))
			}
		}
	}
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no NATS server"))
	}
	for _, s := range c.Servers {
		if !strings.HasPrefix(s, "nats://") && !strings.HasPrefix(s, "tls://") || len(s) <= len("nats://") {
			errs = append(errs, fmt.Errorf("server %q: want a nats:// or tls:// URL", s))
		}
	}
	return errors.Join(errs...)
}

// groups returns Receive and Publish merged, in order, without repeats.
func (c Config) groups() []string {
	out := slices.Clone(c.Receive)
	for _, g := range c.Publish {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// The publisher's timing, pure so that it can be tested with any clock.

// giveUpAt is when the publisher stops retrying a record: one second
// before its not_after (a record that lands later opens nothing useful,
// and receivers refuse it at not_after anyway).
func giveUpAt(notAfter time.Time) time.Time { return notAfter.Add(-time.Second) }

// keyTTL is the per-key TTL of a record written at now: the time left
// until not_after plus a second of slack, rounded up to whole seconds
// (the server's unit; at least 1 s). ok is false when the record is past
// its give-up time.
func keyTTL(now, notAfter time.Time) (ttl time.Duration, ok bool) {
	if !now.Before(giveUpAt(notAfter)) {
		return 0, false
	}
	left := notAfter.Sub(now) + time.Second
	return (left + time.Second - 1).Truncate(time.Second), true
}

// Backoff between publish attempts: doubling from backoffMin to
// backoffMax.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
)

// retryWait is how long to wait before attempt n+1 (n >= 1 attempts
// failed), never past the give-up time; ok is false when no attempt
// is left before it.
func retryWait(n int, now, notAfter time.Time) (wait time.Duration, ok bool) {
	wait = backoffMin
	for i := 1; i < n && wait < backoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, backoffMax)
	if !now.Add(wait).Before(giveUpAt(notAfter)) {
		return 0, false
	}
	return wait, true
}

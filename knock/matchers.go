package knock

import (
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// DoorMatcher is one matcher of knocks: the sequence Matcher (static and
// one-time doors, and every close_sequence) or the TOTPMatcher. The daemon
// loop holds the list that Matchers returns and calls each method on every
// matcher of it, so that nothing is done for one kind of door and
// forgotten for another.
type DoorMatcher interface {
	// Observe feeds one hit at time now and returns what it decided.
	// The slice is reused by the next call.
	Observe(h Hit, now time.Time) []Decision
	// Expire drops the progress older than its seq_timeout.
	Expire(now time.Time) []Decision
	// Update switches to a new policy, keeping what it can.
	Update(p *policy.Policy)
	// Stats returns the counters (summed over the list for metrics).
	Stats() Stats
}

var (
	_ DoorMatcher = (*Matcher)(nil)
	_ DoorMatcher = (*TOTPMatcher)(nil)
)

// Indices in the list that Matchers returns.
const (
	SequenceMatcher = 0 // *Matcher
	TOTPMatchers    = 1 // *TOTPMatcher
)

// Matchers returns the matchers of p's knocks, in the order of the
// indices above.
func Matchers(p *policy.Policy, cfg Config) []DoorMatcher {
	return []DoorMatcher{SequenceMatcher: New(p, cfg), TOTPMatchers: NewTOTP(p, cfg)}
}

// MatcherFor returns the index in Matchers' list of the matcher that opens
// doors of kind k, or -1 for a kind that is not opened by knocks (SPA: the
// daemon verifies its packets in a reader of their own and hands the loop
// grant requests). A kind that this switch does not know panics: the test
// that iterates over policy.Kinds catches a new kind left out.
func MatcherFor(k policy.Kind) int {
	switch k {
	case policy.KindStatic, policy.KindOneTime:
		return SequenceMatcher
	case policy.KindTOTP:
		return TOTPMatchers
	case policy.KindSPA:
		return -1
	}
	panic("knock: no matcher for door kind " + k.String())
}

// Add returns the sum of two Stats: the counters of a list of matchers.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Tracked: s.Tracked + o.Tracked,
		Evicted: s.Evicted + o.Evicted,
		Expired: s.Expired + o.Expired,
		Opens:   s.Opens + o.Opens,
		Closes:  s.Closes + o.Closes,
		Resets:  s.Resets + o.Resets,
	}
}

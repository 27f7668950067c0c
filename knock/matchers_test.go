package knock

import (
	"testing"

	"github.com/sesame-knock/sesame/policy"
)

// TestMatcherForEveryKind: every door kind is opened by one matcher of the
// list, or is SPA (a grant source of the daemon's own). A new kind that
// MatcherFor does not know panics here.
func TestMatcherForEveryKind(t *testing.T) {
	t.Parallel()
	ms := Matchers(nil, Config{MaxEntries: 16})
	used := make([]bool, len(ms))
	for _, k := range policy.Kinds() {
		i := MatcherFor(k)
		switch {
		case i == -1 && k == policy.KindSPA:
		case i >= 0 && i < len(ms):
			used[i] = true
		default:
			t.Errorf("MatcherFor(%v) = %d, want an index of Matchers' list (%d long)", k, i, len(ms))
		}
	}
	for i, u := range used {
		if !u {
			t.Errorf("matcher %d (%T) opens no kind of door", i, ms[i])
		}
	}
	if _, ok := ms[SequenceMatcher].(*Matcher); !ok {
		t.Errorf("Matchers()[SequenceMatcher] is %T", ms[SequenceMatcher])
	}
	if _, ok := ms[TOTPMatchers].(*TOTPMatcher); !ok {
		t.Errorf("Matchers()[TOTPMatchers] is %T", ms[TOTPMatchers])
	}
}

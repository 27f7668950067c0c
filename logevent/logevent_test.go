package logevent

import (
	"regexp"
	"testing"
)

// TestNames: every event is kebab-case and listed once in All.
func TestNames(t *testing.T) {
	t.Parallel()
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, e := range All {
		if !kebab.MatchString(e) {
			t.Errorf("event %q is not kebab-case", e)
		}
		if seen[e] {
			t.Errorf("event %q listed twice", e)
		}
		seen[e] = true
	}
}

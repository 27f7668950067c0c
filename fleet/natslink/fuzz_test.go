package natslink

import (
	"strings"
	"testing"
)

// FuzzParseKey: any key either parses into a valid member and id that
// make it up again, or is refused; a subject likewise.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"bastion-1." + testID, "a.b.c", "", ".", "x." + strings.ToUpper(testID), ">.*"} {
		f.Add(s)
	}
	prefix := SubjectPrefix("prod", "web")
	f.Fuzz(func(t *testing.T, key string) {
		m, id, ok := ParseKey(key)
		if ok && (Key(m, id) != key || !ValidName(m) || !validID(id) || strings.ContainsAny(m+id, ".*> \t\r\n")) {
			t.Fatalf("ParseKey(%q) = %q %q", key, m, id)
		}
		m2, id2, ok2 := parseSubject(prefix, prefix+key)
		if ok2 != ok || m2 != m || id2 != id {
			t.Fatalf("parseSubject and ParseKey differ on %q", key)
		}
	})
}

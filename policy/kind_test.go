package policy

import (
	"strings"
	"testing"
)

// kindDoor returns a door of kind k, as validation makes them.
func kindDoor(t *testing.T, k Kind) Door {
	t.Helper()
	switch k {
	case KindStatic:
		return referencePolicy.Doors[0]
	case KindOneTime:
		return referenceOnce
	case KindTOTP:
		return referenceVault
	case KindSPA:
		return referenceSPA
	}
	t.Fatalf("no test door of kind %v: add one here, then follow docs/design.md, How to add a door kind", k)
	return Door{}
}

// TestKinds: every kind has a name, is what Door.Kind says of its doors,
// and has a summary line and a step count.
func TestKinds(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, k := range Kinds() {
		name := k.String()
		if strings.HasPrefix(name, "kind(") || seen[name] {
			t.Errorf("kind %d has name %q", k, name)
		}
		seen[name] = true
		d := kindDoor(t, k)
		if got := d.Kind(); got != k {
			t.Errorf("door %q: Kind() = %v, want %v", d.Name, got, k)
		}
		if got := d.Static(); got != (k == KindStatic) {
			t.Errorf("door %q: Static() = %v", d.Name, got)
		}
		var b strings.Builder
		d.summary(&b)
		if !strings.HasPrefix(b.String(), d.Name+": ") || strings.Contains(b.String(), "\n") {
			t.Errorf("door %q: summary %q", d.Name, b.String())
		}
		if d.Steps() < 1 {
			t.Errorf("door %q: Steps() = %d", d.Name, d.Steps())
		}
	}
	if got := Kind(0).String(); got != "kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
}

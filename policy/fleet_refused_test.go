package policy

import (
	"strings"
	"testing"
)

// TestFleetNotYetAccepted keeps fleet mode out of the config until the
// daemon applies it (issue 14): package fleet exists, but a fleet block or
// a door's fleet_groups is an error, not silently ignored.
func TestFleetNotYetAccepted(t *testing.T) {
	t.Parallel()
	door := "door \"ssh\" {\n  sequence = [\"7000/tcp\", \"8000/udp\", \"9000/tcp\"]\n  open     = [\"22/tcp\"]\n  open_for = \"30s\"\n%s}\n"
	tests := []struct {
		name, src, want string
	}{
		{"fleet block", "fleet {\n  name = \"prod\"\n}\n" + strings.Replace(door, "%s", "", 1),
			`fleet.hcl:1,1-6: Unsupported block type`},
		{"fleet_groups", strings.Replace(door, "%s", "  fleet_groups = [\"web\"]\n", 1),
			`fleet.hcl:5,3-15: Unsupported argument`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, diags := Parse("fleet.hcl", []byte(tt.src))
			if p != nil || !diags.HasErrors() {
				t.Fatal("accepted")
			}
			if got := diags.Errors()[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("error:\n got %s\nwant %s...", got, tt.want)
			}
		})
	}
}

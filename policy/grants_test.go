package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGrantAttrs(t *testing.T) {
	t.Parallel()
	type got struct {
		MaxGrants     int
		Confirm       bool
		ConfirmWithin time.Duration
	}
	tests := []struct {
		name, in string
		want     got
	}{
		{"defaults", `sequence = ["7000", "8000", "9000"]`, got{65536, true, 10 * time.Second}},
		{"short open_for caps the default", `sequence = ["7000", "8000", "9000"]
  open_for = "4s"`, got{65536, true, 4 * time.Second}},
		{"set", `sequence = ["7000", "8000", "9000"]
  open_for = "1h"
  max_grants = 16
  confirm_within = "1m"`, got{16, true, time.Minute}},
		{"off", `sequence = ["7000", "8000", "9000"]
  confirm = false
  max_grants = 1048576`, got{1 << 20, false, 0}},
		{"one-time: never pending", `one_time_sequences = "testdata/reference.seqs"`, got{65536, false, 0}},
		{"totp: never pending", `totp {}
  client "a" { secret_file = "testdata/secrets/alice.key" }
  max_grants = 100`, got{100, false, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, diags := Parse("t.hcl", []byte("door \"d\" {\n  "+tt.in+"\n  open = [\"22\"]\n}\n"))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			d := p.Doors[0]
			if diff := cmp.Diff(tt.want, got{d.MaxGrants, d.Confirm, d.ConfirmWithin}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds random bytes and mutations of the reference and bad
// configs to Parse: it never panics, returns a Policy exactly when there is
// no error, and every Policy it returns keeps the invariants.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.hcl")
	seeds = append(seeds, "testdata/reference.hcl", "testdata/fleet.hcl")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("door \"a\" {\n sequence = [1, 2, 3]\n open = [4]\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, diags := Parse("fuzz.hcl", src)
		if (p == nil) != diags.HasErrors() {
			t.Fatalf("Policy nil = %v but HasErrors = %v:\n%s", p == nil, diags.HasErrors(), diags.Error())
		}
		for _, d := range diags.All() {
			if d.Summary == "" {
				t.Errorf("diagnostic without a summary: %+v", d)
			}
		}
		_ = diags.Error()
		checkInvariants(t, p)
		if p != nil {
			if p.File != "fuzz.hcl" {
				t.Errorf("File = %q", p.File)
			}
			_ = p.Summary()
		}
	})
}

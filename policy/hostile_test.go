package policy

import (
	"strings"
	"testing"
)

// TestHostileInputs feeds Parse inputs of the largest accepted size built to
// make HCL recurse as deep as it can (its parser and evaluator are recursive,
// and a stack overflow is fatal, not a panic) or to make cross-door checks
// quadratic. Each must come back with an error, not crash.
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("large inputs; skipped with -short")
	}
	n := maxConfigSize - 64
	tests := []struct {
		name, src, want string
	}{
		{"brackets", "table = " + strings.Repeat("[", n), "Nested too deeply"},
		{"brackets behind strings", "table = " + strings.Repeat(`["]"`, n/4), "Nested too deeply"},
		{"parentheses", "table = " + strings.Repeat("(", n), "Nested too deeply"},
		{"objects", "table = " + strings.Repeat("{a=", n/3), "Nested too deeply"},
		{"blocks", strings.Repeat("door \"x\" {\n", n/11), "Nested too deeply"},
		{"unary minus", "table = " + strings.Repeat("-", n) + "1", "Nested too deeply"},
		{"unary across newlines", "table = (" + strings.Repeat("!\n", n/2) + "true)", "Nested too deeply"},
		{"templates", "table = " + strings.Repeat(`"${`, n/3), "Nested too deeply"},
		{"template ifs", `table = "` + strings.Repeat("%{if true}", n/10) + `"`, "Nested too deeply"},
		{"heredoc ifs", "table = <<EOT\n" + strings.Repeat("%{if true}", n/10) + "\nEOT\n", "Nested too deeply"},
		{"splats", "table = [1]" + strings.Repeat("[*]", n/3), "Nested too deeply"},
		{"for expressions", "table = " + strings.Repeat("[for x in ", n/10), "Nested too deeply"},
		{"sum chain", "table = 1" + strings.Repeat("+1", n/2), "Invalid table"},
		{"comparison chain", "table = 1" + strings.Repeat("==1", n/3), "Invalid table"},
		{"conditional chain", "table = " + strings.Repeat("true ? 1 : ", n/11) + "1", "Invalid table"},
		{"index chain", "table = [1]" + strings.Repeat("[0]", n/3), "Invalid index"},
		{"many doors", strings.Repeat("door \"x\" {\nsequence=[1,2,3]\nopen=[4]\n}\n", n/40), "Duplicate door name"},
		{"too large", strings.Repeat(" ", maxConfigSize+1), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := Parse("hostile.hcl", []byte(tt.src))
			if p != nil || !diags.HasErrors() {
				t.Fatalf("Parse = %v, want nil and errors", p)
			}
			if got := diags.Errors()[0].Summary; !strings.Contains(got, tt.want) {
				t.Errorf("first error %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

// TestNestingAllowsConfigs checks that the nesting guard lets through the
// moderate nesting a hand-written config could have.
func TestNestingAllowsConfigs(t *testing.T) {
	t.Parallel()
	src := "# [[[[[[ ((((( {{{{ unbalanced in a comment\n# " + strings.Repeat("-", 200) + "\n" +
		`door "a" {
  sequence = [` + strings.Repeat("(", 20) + `"7000/tcp"` + strings.Repeat(")", 20) + `, "${"8000"}", -(-9000)]
  open     = [22]
}
`
	p, diags := Parse("ok.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags.Error())
	}
	want := []PortProto{tcp(7000), tcp(8000), tcp(9000)}
	if got := p.Doors[0].Sequence; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("sequence = %v, want %v", got, want)
	}
}

package knockd

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/migrate"
	"github.com/sesame-knock/sesame/policy"
)

// checkOnlyOneTime checks an output that sesame rejects: every error is a
// one_time_sequences file that cannot be read, and the conversion warned.
// It returns the policy of the output with each one_time_sequences line
// replaced by a sequence (as render validates such doors), which must
// validate.
func checkOnlyOneTime(t *testing.T, res migrate.Result, diags policy.Diagnostics) *policy.Policy {
	t.Helper()
	for _, d := range diags.Errors() {
		if d.Summary != "Invalid one_time_sequences" {
			t.Fatalf("output does not validate:\n%s\n%s", diags.Error(), res.HCL)
		}
	}
	if len(res.Warnings) == 0 {
		t.Fatalf("output does not validate, and no warning says so:\n%s\n%s", diags.Error(), res.HCL)
	}
	var b strings.Builder
	n := 0
	for l := range strings.Lines(string(res.HCL)) {
		if strings.HasPrefix(l, "  one_time_sequences = ") {
			n++
			l = fmt.Sprintf("  %-14s = %s\n", "sequence", standIn(n))
		}
		b.WriteString(l)
	}
	p, diags := policy.Parse("out.hcl", []byte(b.String()))
	if diags.HasErrors() {
		t.Fatalf("output with its one_time_sequences replaced does not validate:\n%s\n%s", diags.Error(), b.String())
	}
	return p
}

// checkAccounted checks what `sesame convert` promises for every door
// section of f: it comes out as a door that sesame accepts, as the
// close_sequence of another door, or commented out with a warning from
// one of its lines; res.HCL (which parsed as p) has exactly the doors that
// came out. It also checks that a second conversion gives the same text
// and warnings.
func checkAccounted(t *testing.T, f *File, res migrate.Result, p *policy.Policy) {
	t.Helper()
	lines := strings.Split(string(res.HCL), "\n")
	doors := 0
	for i, s := range f.Sections {
		if s.Line == 0 || strings.EqualFold(s.Name, "options") {
			continue
		}
		end := int(^uint(0) >> 1)
		for _, n := range f.Sections[i+1:] {
			if n.Line > 0 {
				end = n.Line
				break
			}
		}
		head := fmt.Sprintf("# [%s] (line %d)", s.Name, s.Line)
		at, folded := -1, false
		for j, l := range lines {
			if l == head {
				at = j
				break
			}
			if strings.HasPrefix(l, head+" is the close_sequence of door ") {
				folded = true
				break
			}
		}
		if folded {
			continue
		}
		if at < 0 {
			t.Fatalf("section [%s] (line %d) is missing from the output:\n%s", s.Name, s.Line, res.HCL)
		}
		off := false
		for _, l := range lines[at+1:] {
			if l == "" { // each section's text ends at a blank line
				break
			}
			off = off || strings.HasPrefix(l, "# Not converted: ")
		}
		if !off {
			doors++
			continue
		}
		warned := false
		for _, w := range res.Warnings {
			warned = warned || w.Line >= s.Line && w.Line < end
		}
		if !warned {
			t.Fatalf("section [%s] (line %d) is commented out without a warning from its lines; warnings %v:\n%s", s.Name, s.Line, res.Warnings, res.HCL)
		}
	}
	if len(p.Doors) != doors {
		t.Fatalf("output has %d doors, %d sections came out as doors:\n%s", len(p.Doors), doors, res.HCL)
	}
	again := Convert(f, "fuzz.conf") // the name FuzzConvert uses
	if !bytes.Equal(again.HCL, res.HCL) || !cmp.Equal(again.Warnings, res.Warnings) {
		t.Fatalf("a second conversion differs:\n%s\n%s", cmp.Diff(string(res.HCL), string(again.HCL)), cmp.Diff(res.Warnings, again.Warnings))
	}
}

// TestConvertTwoMissingOneTime: a door whose one_time_sequences file is
// missing here (converted on another host) must not get the next such door
// commented out for the first one's file; both come out, with a warning
// each. Found by FuzzConvert's accounting check.
func TestConvertTwoMissingOneTime(t *testing.T) {
	t.Parallel()
	src := "[a]\none_time_sequences = /nonexistent/sesame-a\ncommand = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n" +
		"[b]\none_time_sequences = /nonexistent/sesame-b\ncommand = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 25 -j ACCEPT\n"
	f, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	res := Convert(f, "fuzz.conf")
	if n := strings.Count(string(res.HCL), "\ndoor "); n != 2 {
		t.Errorf("%d doors in the output, want 2:\n%s", n, res.HCL)
	}
	if len(res.Warnings) != 2 {
		t.Errorf("warnings %v, want one per missing file", res.Warnings)
	}
	_, diags := policy.Parse("out.hcl", res.HCL)
	checkAccounted(t, f, res, checkOnlyOneTime(t, res, diags))
}

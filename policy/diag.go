package policy

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostics holds the errors and warnings of one Load or Parse, with the
// parsed sources needed to render them with snippets.
type Diagnostics struct {
	diags hcl.Diagnostics
	files map[string]*hcl.File
}

// HasErrors reports whether any diagnostic is an error.
func (d Diagnostics) HasErrors() bool { return d.diags.HasErrors() }

// All returns every diagnostic, errors and warnings, in source order of
// discovery.
func (d Diagnostics) All() hcl.Diagnostics { return d.diags }

// Extend returns d with more diagnostics appended: those of checks made
// outside package policy on the same config (fleet.LoadConfig), rendered
// with snippets of the config file like d's own.
func (d Diagnostics) Extend(more hcl.Diagnostics) Diagnostics {
	d.diags = append(d.diags[:len(d.diags):len(d.diags)], more...)
	return d
}

// Errors returns only the errors.
func (d Diagnostics) Errors() hcl.Diagnostics { return d.filter(hcl.DiagError) }

// Warnings returns only the warnings.
func (d Diagnostics) Warnings() hcl.Diagnostics { return d.filter(hcl.DiagWarning) }

func (d Diagnostics) filter(sev hcl.DiagnosticSeverity) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, x := range d.diags {
		if x.Severity == sev {
			out = append(out, x)
		}
	}
	return out
}

// Write renders every diagnostic with a source snippet, as `sesame check`
// prints them. With color it wraps at 100 columns for a terminal; without,
// it does not wrap.
func (d Diagnostics) Write(w io.Writer, color bool) error {
	width := uint(0)
	if color {
		width = 100
	}
	tw := hcl.NewDiagnosticTextWriter(w, d.files, width, color)
	return tw.WriteDiagnostics(d.diags)
}

// Error returns one line per diagnostic in the form
// "file:line,col-col: summary; detail", or "summary; detail" for one
// without a position (an unreadable file).
func (d Diagnostics) Error() string {
	lines := make([]string, len(d.diags))
	for i, x := range d.diags {
		if x.Subject == nil { // hcl's Error would print "<nil>: "
			lines[i] = x.Summary + "; " + x.Detail
			continue
		}
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// diagf builds a diagnostic of the given severity at rng.
func diagf(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: sev,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	}
}

// errorf builds an error diagnostic at rng.
func errorf(rng hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	return diagf(hcl.DiagError, rng, summary, detail, args...)
}

// warnf builds a warning diagnostic at rng.
func warnf(rng hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	return diagf(hcl.DiagWarning, rng, summary, detail, args...)
}

// pos renders a range's start as "file:line,col" for notes that point at a
// second place.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

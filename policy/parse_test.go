package policy

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

func tcp(port uint16) PortProto { return PortProto{Port: port, Proto: TCP} }
func udp(port uint16) PortProto { return PortProto{Port: port, Proto: UDP} }

// referencePolicy is what testdata/reference.hcl says, written out by hand.
var referencePolicy = &Policy{
	File:       "testdata/reference.hcl",
	Interfaces: []string{"eth0", "wg0"},
	Table:      "sesame",
	Closed:     ClosedReject,
	Doors: []Door{
		{
			Name:       "ssh",
			Sequence:   []PortProto{tcp(7000), udp(8000), tcp(9000)},
			SeqTimeout: 10 * time.Second,
			TCPFlags:   TCPFlags{Mask: FlagSYN | FlagACK | FlagRST, Want: FlagSYN},
			Open:       []PortProto{tcp(22)},
			Forward: []Target{
				{PortProto: tcp(8080)},
				{Addr: netip.MustParseAddr("192.0.2.10"), PortProto: tcp(22)},
				{Addr: netip.MustParseAddr("2001:db8:5::10"), PortProto: tcp(443)},
			},
			OpenFor:       time.Minute,
			CloseSequence: []PortProto{tcp(9000), udp(8000), tcp(7000)},
			OnOpen:        []string{"/usr/bin/logger", "-t", "sesame", "{door} opened {ports} for {ip}"},
			OnClose:       []string{"/usr/bin/logger", "-t", "sesame", "{door} closed for {ip}"},
			HookTimeout:   5 * time.Second,
			MaxGrants:     4096,
			Confirm:       true,
			ConfirmWithin: 15 * time.Second,
		},
		{
			Name:        "web-admin",
			Sequence:    []PortProto{udp(7100), udp(7200), udp(7300), tcp(7400)},
			SeqTimeout:  DefaultSeqTimeout,
			TCPFlags:    DefaultTCPFlags,
			Open:        []PortProto{tcp(443), tcp(8443), udp(51820)},
			OpenFor:     DefaultOpenFor,
			HookTimeout: DefaultHookTimeout,
			MaxGrants:   DefaultMaxGrants,
			Confirm:     true,
			// open_for (30s) is longer than the default: 10s.
			ConfirmWithin: DefaultConfirm,
		},
	},
}

func TestReference(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/reference.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// Its state_dir, /var/lib/sesame, becomes one that whoever runs the
	// test may write (the one-time door needs that) and that holds no
	// state of this host's.
	state := t.TempDir()
	src = bytes.Replace(src, []byte(`state_dir = "/var/lib/sesame"`), []byte(`state_dir = "`+state+`"`), 1)
	p, diags := Parse("testdata/reference.hcl", src)
	if len(diags.All()) != 0 {
		t.Fatalf("reference.hcl: want no diagnostics, got:\n%s", diags.Error())
	}
	want := *referencePolicy
	once := referenceOnce
	once.OneTimeUsed = filepath.Join(state, "one-time-once")
	want.Doors = append(append([]Door(nil), want.Doors...), referenceVault, once, referenceSPA)
	want.StateDir = state
	if diff := cmp.Diff(&want, p); diff != "" {
		t.Errorf("Load(reference.hcl) mismatch (-want +got):\n%s", diff)
	}
	checkInvariants(t, p)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	src := `door "d" {
  sequence = ["1001", "1002/udp", 1003]
  open     = [22]
}
`
	want := &Policy{
		File:     "min.hcl",
		Table:    DefaultTable,
		Closed:   ClosedDrop,
		StateDir: DefaultStateDir,
		Doors: []Door{{
			Name:        "d",
			Sequence:    []PortProto{tcp(1001), udp(1002), tcp(1003)},
			SeqTimeout:  5 * time.Second,
			TCPFlags:    TCPFlags{Mask: FlagSYN | FlagACK, Want: FlagSYN},
			Open:        []PortProto{tcp(22)},
			OpenFor:     30 * time.Second,
			HookTimeout: DefaultHookTimeout,
			MaxGrants:   65536,
			Confirm:     true,
			// The default 10s, shorter than open_for.
			ConfirmWithin: 10 * time.Second,
		}},
	}
	p, diags := Parse("min.hcl", []byte(src))
	if len(diags.All()) != 0 {
		t.Fatalf("want no diagnostics, got:\n%s", diags.Error())
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.hcl")
	p, diags := Load(path)
	if p != nil {
		t.Errorf("Load(%q) = %+v, want nil", path, p)
	}
	errs := diags.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), path) {
		t.Errorf("Load(%q) diagnostics = %q, want one error naming the path", path, diags.Error())
	}
	// No position to give: the one-line form must not print hcl's "<nil>".
	if got := diags.Error(); strings.Contains(got, "<nil>") || !strings.HasPrefix(got, "Cannot read config file "+path) {
		t.Errorf("Error() = %q, want it to start with the summary, no <nil>", got)
	}
	var buf bytes.Buffer
	if err := diags.Write(&buf, true); err != nil || !strings.Contains(buf.String(), path) {
		t.Errorf("Write = %v, %q; want the path rendered", err, buf.String())
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	src := bytes.Repeat([]byte("#"), maxConfigSize+1)
	if p, diags := Parse("big.hcl", src); p != nil || !diags.HasErrors() {
		t.Errorf("Parse(%d bytes) = %v, %q; want nil and an error", len(src), p, diags.Error())
	}
}

// TestBad walks testdata/bad: each file states in its first lines the
// position and text of a diagnostic it must produce, and its severity.
func TestBad(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/bad/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Errorf("testdata/bad has %d files, want 25 or more", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			line, col, text, sev := parseWant(t, string(src))
			p, diags := Parse(file, src)
			checkInvariants(t, p)
			if (p == nil) != diags.HasErrors() {
				t.Errorf("Policy nil = %v, HasErrors = %v", p == nil, diags.HasErrors())
			}
			if sev == hcl.DiagWarning && diags.HasErrors() {
				t.Errorf("a warning case must have no errors, got:\n%s", diags.Error())
			}
			for _, d := range diags.All() {
				if d.Severity == sev && d.Subject != nil && d.Subject.Start.Line == line && d.Subject.Start.Column == col &&
					strings.Contains(d.Summary+"; "+d.Detail, text) {
					return
				}
			}
			t.Errorf("want a %s at %d:%d containing %q, got:\n%s", sevName(sev), line, col, text, diags.Error())
		})
	}
}

// parseWant reads "# want: LINE:COL TEXT" and an optional
// "# severity: warning" from the first comment lines.
func parseWant(t *testing.T, src string) (line, col int, text string, sev hcl.DiagnosticSeverity) {
	t.Helper()
	sev = hcl.DiagError
	for _, l := range strings.Split(src, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		if rest, ok := strings.CutPrefix(l, "# want: "); ok {
			pos, txt, _ := strings.Cut(rest, " ")
			ls, cs, _ := strings.Cut(pos, ":")
			if _, err := fmt.Sscan(ls, &line); err != nil {
				t.Fatalf("bad want line %q: %v", l, err)
			}
			if _, err := fmt.Sscan(cs, &col); err != nil {
				t.Fatalf("bad want line %q: %v", l, err)
			}
			text = txt
		}
		if strings.TrimSpace(l) == "# severity: warning" {
			sev = hcl.DiagWarning
		}
	}
	if line == 0 || text == "" {
		t.Fatal(`missing "# want: LINE:COL TEXT" header`)
	}
	return line, col, text, sev
}

func sevName(s hcl.DiagnosticSeverity) string {
	if s == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

func TestDiagnosticsWrite(t *testing.T) {
	t.Parallel()
	src := "door \"a\" {\n  sequence = [\"7000:udp\", 8000, 9000]\n  open = [22]\n}\n"
	_, diags := Parse("w.hcl", []byte(src))
	var buf bytes.Buffer
	if err := diags.Write(&buf, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Error: Invalid port in sequence", "on w.hcl line 2", `sequence = ["7000:udp"`, `write "7000/udp"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Write output lacks %q:\n%s", want, buf.String())
		}
	}
	if got, want := diags.Error(), `w.hcl:2,15-25: Invalid port in sequence; "7000:udp" uses the knock client's PORT:PROTO form: write "7000/udp".`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDiagnosticsSplit(t *testing.T) {
	t.Parallel()
	// One error (bad closed) and one warning (short sequence).
	src := "closed = \"deny\"\ndoor \"a\" {\n  sequence = [7000]\n  open = [22]\n}\n"
	p, diags := Parse("s.hcl", []byte(src))
	if p != nil {
		t.Errorf("Policy = %+v, want nil", p)
	}
	if got := len(diags.Errors()); got != 1 {
		t.Errorf("Errors() has %d, want 1:\n%s", got, diags.Error())
	}
	if got := len(diags.Warnings()); got != 1 {
		t.Errorf("Warnings() has %d, want 1:\n%s", got, diags.Error())
	}
	if got := len(diags.All()); got != 2 {
		t.Errorf("All() has %d, want 2", got)
	}
}

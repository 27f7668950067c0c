// Package onetime reads and updates knockd-style one-time sequence files:
// one knock sequence per line, ports written PORT, PORT:PROTO or PORT/PROTO
// and separated by commas and/or spaces; blank lines and lines whose first
// non-blank character is "#" are ignored. A used sequence is marked by
// commenting its line out ("#" in front), as knockd does, but by rewriting
// the whole file atomically (temporary file in the same directory, fsync,
// rename, fsync of the directory) rather than poking bytes in place: a crash
// leaves either the old or the new file, never a torn one.
package onetime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sesame-knock/sesame/internal/atomicfile"
)

// Step is one knock port: a port and "tcp" or "udp".
type Step struct {
	Port  uint16
	Proto string
}

// Seq is one unused sequence of a file and the line it is on (1-based).
type Seq struct {
	Line  int
	Steps []Step
}

// MaxSteps bounds a sequence, as sesame's sequence attribute does.
const MaxSteps = 32

// MaxFileSize bounds what Read accepts.
const MaxFileSize = 4 << 20

// LineError is a malformed line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Read returns the unused sequences of the file at path, in file order.
func Read(path string) ([]Seq, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s has %d bytes; at most %d are accepted", path, len(b), MaxFileSize)
	}
	return Parse(b)
}

// Parse returns the unused sequences in the file content b.
func Parse(b []byte) ([]Seq, error) {
	var out []Seq
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		steps, err := parseLine(line)
		if err != nil {
			return nil, &LineError{Line: i + 1, Err: err}
		}
		out = append(out, Seq{Line: i + 1, Steps: steps})
	}
	return out, nil
}

func parseLine(line string) ([]Step, error) {
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })
	if len(fields) > MaxSteps {
		return nil, fmt.Errorf("%d steps; at most %d are allowed", len(fields), MaxSteps)
	}
	steps := make([]Step, 0, len(fields))
	for _, f := range fields {
		portStr, proto, has := strings.Cut(f, ":")
		if !has {
			portStr, proto, has = strings.Cut(f, "/")
		}
		if !has {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("%q: unknown protocol %q: want tcp or udp", f, proto)
		}
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a port: want 1 to 65535, optionally followed by :tcp or :udp", f)
		}
		s := Step{Port: uint16(n), Proto: proto}
		if len(steps) > 0 && steps[len(steps)-1] == s {
			return nil, fmt.Errorf("step %d repeats the step before it (%s); a repeat is ignored as a retransmit, so this sequence could never open", len(steps)+1, f)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// ErrChanged means the line to mark is no longer an unused sequence: the
// file changed behind the daemon's back.
var ErrChanged = errors.New("the line is no longer an unused sequence")

// MarkUsed comments out line (1-based) of the file at path by writing a new
// file and renaming it over the old one. The new file keeps the old one's
// mode. It returns once the rename is durable.
func MarkUsed(path string, line int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := bytes.Split(b, []byte("\n"))
	if line < 1 || line > len(lines) {
		return fmt.Errorf("line %d of %s: %w", line, path, ErrChanged)
	}
	l := lines[line-1]
	if t := bytes.TrimSpace(l); len(t) == 0 || t[0] == '#' {
		return fmt.Errorf("line %d of %s: %w", line, path, ErrChanged)
	}
	lines[line-1] = append([]byte("#"), l...)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, bytes.Join(lines, []byte("\n")), st.Mode().Perm()); err != nil {
		return fmt.Errorf("mark sequence used: %w", err)
	}
	return nil
}

// MarkUnused undoes MarkUsed: it removes the "#" that MarkUsed put in front
// of line, for a sequence whose grant did not land. The line must be a
// commented-out sequence.
func MarkUnused(path string, line int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := bytes.Split(b, []byte("\n"))
	if line < 1 || line > len(lines) || !bytes.HasPrefix(lines[line-1], []byte("#")) {
		return fmt.Errorf("line %d of %s: %w", line, path, ErrChanged)
	}
	if steps, err := parseLine(string(lines[line-1][1:])); err != nil || len(steps) == 0 {
		return fmt.Errorf("line %d of %s: %w", line, path, ErrChanged)
	}
	lines[line-1] = lines[line-1][1:]
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, bytes.Join(lines, []byte("\n")), st.Mode().Perm()); err != nil {
		return fmt.Errorf("mark sequence unused: %w", err)
	}
	return nil
}

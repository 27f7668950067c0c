// Package onetime reads knockd-style one-time sequence files and keeps the
// record of the sequences used. A sequence file holds one knock sequence
// per line, ports written PORT, PORT:PROTO or PORT/PROTO and separated by
// commas and/or spaces; blank lines and lines whose first non-blank
// character is "#" are ignored (knockd, and sesame before it kept its
// state in state_dir, marked a used line by commenting it out: such lines
// stay used). sesame never writes the sequence file: it may live on a
// read-only /etc. Used sequences are recorded in a state file of their own
// (state.go), by a hash of their steps, so that editing the sequence file
// (reordering, reformatting, adding lines) never makes a used one usable.
package onetime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// Key identifies the sequence in the state file: the SHA-256, in hex, of
// its steps written "PORT/proto,PORT/proto,...". Two lines with the same
// steps, however written, have the same key.
func (s Seq) Key() string {
	var b strings.Builder
	for i, st := range s.Steps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(st.Port)))
		b.WriteByte('/')
		b.WriteString(st.Proto)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
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

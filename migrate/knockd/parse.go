// Package knockd reads knockd's configuration file (knockd 0.8,
// /etc/knockd.conf) and converts it into a sesame HCL config. Everything
// here is pure: Parse takes bytes, Convert returns text and warnings, and
// `sesame convert` only does the I/O.
package knockd

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Entry is one "key = value" line (or a bare key, like UseSyslog).
type Entry struct {
	Key   string // upper case, as knockd compares keys
	Value string // trimmed; "" for a bare key
	Line  int    // 1-based line in the file
}

// Section is one "[name]" block: "options" or a door.
type Section struct {
	Name    string
	Line    int
	Entries []Entry
}

// Get returns the last entry among keys (knockd keeps the last one), or
// false.
func (s *Section) Get(keys ...string) (Entry, bool) {
	var (
		e  Entry
		ok bool
	)
	for _, en := range s.Entries {
		for _, k := range keys {
			if en.Key == k {
				e, ok = en, true
			}
		}
	}
	return e, ok
}

// File is a parsed knockd.conf: its sections in order. Lines before the
// first section are kept as an unnamed section with Line 0.
type File struct {
	Sections []Section
}

// maxLine bounds one line; knockd's own buffer is smaller.
const maxLine = 64 << 10

// Parse reads knockd.conf syntax as knockd does: "#" starts a comment line,
// "[name]" starts a section, other lines are "key = value" or a bare key.
// Keys are case-insensitive. It fails only on a line too long to be a
// config line or on binary content.
func Parse(src []byte) (*File, error) {
	if bytes.IndexByte(src, 0) >= 0 {
		return nil, fmt.Errorf("not a knockd.conf: the file holds NUL bytes")
	}
	f := &File{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 4096), maxLine)
	cur := -1
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			f.Sections = append(f.Sections, Section{Name: strings.TrimSpace(line[1 : len(line)-1]), Line: n})
			cur = len(f.Sections) - 1
			continue
		}
		if cur < 0 {
			f.Sections = append(f.Sections, Section{})
			cur = 0
		}
		key, val, _ := strings.Cut(line, "=")
		f.Sections[cur].Entries = append(f.Sections[cur].Entries, Entry{
			Key:   strings.ToUpper(strings.TrimSpace(key)),
			Value: strings.TrimSpace(val),
			Line:  n,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read knockd.conf: %w", err)
	}
	return f, nil
}

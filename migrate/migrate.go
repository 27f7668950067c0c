// Package migrate holds what the converters from other servers' configs
// share: a conversion's Result (the sesame HCL, the key files it refers to
// and what did not map, each with its source line). The converters live
// in its subpackages, migrate/knockd (knockd.conf) and migrate/fwknop
// (fwknopd's access.conf); they are pure, and `sesame convert` does the
// I/O and prints every Result the same way.
package migrate

import "fmt"

// Warning is something a converter could not map, with the line of the
// source it comes from (0 when it concerns the whole file).
type Warning struct {
	Line int
	Msg  string
}

func (w Warning) String() string {
	if w.Line == 0 {
		return w.Msg
	}
	return fmt.Sprintf("line %d: %s", w.Line, w.Msg)
}

// KeyFile is a secret file the converted config refers to.
type KeyFile struct {
	Path    string
	Content string // write with mode 0600; never print it
}

// Result is a conversion: the sesame config, the key files it needs and
// what did not map, sorted by line.
type Result struct {
	HCL      []byte
	KeyFiles []KeyFile
	Warnings []Warning
}

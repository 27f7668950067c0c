// Package syncbuf is a bytes.Buffer safe for concurrent use: the output of
// a child process (written by os/exec's copying goroutines) read while the
// process runs, as the e2e suite and the benchmark do with sesame's log.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes; String may be called while writes go on.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

// Under journald each line starts with its syslog priority and has no
// timestamp; elsewhere lines are plain.
func TestJournalLogLines(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "8:1234")
	var buf bytes.Buffer
	log, err := newLogger(&buf, "text", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("stage", "src", "192.0.2.2")
	log.Info("open", "src", "192.0.2.2")
	log.With("table", "sesame").Warn("table changed under sesame, restoring it")
	log.Error("grant failed", "src", "192.0.2.2")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"<7>level=DEBUG msg=stage", "<6>level=INFO msg=open", "<4>level=WARN msg=\"table changed", "<3>level=ERROR msg=\"grant failed\""}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) || strings.Contains(lines[i], "time=") {
			t.Errorf("line %d = %q, want prefix %q and no time=", i, lines[i], w)
		}
	}

	t.Setenv("JOURNAL_STREAM", "")
	buf.Reset()
	log, _ = newLogger(&buf, "text", "info")
	log.Info("open")
	if s := buf.String(); !strings.HasPrefix(s, "time=") {
		t.Errorf("outside journald: %q, want a plain line with time=", s)
	}
}

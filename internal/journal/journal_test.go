package journal

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Each line starts with its syslog priority and has no time; a caller's
// ReplaceAttr still applies.
func TestHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "secret" {
			a.Value = slog.StringValue("x")
		}
		return a
	}}
	log := slog.New(NewHandler(&buf, opts)).With("table", "sesame")
	log.Debug("stage", "secret", "k")
	log.Info("open")
	log.WithGroup("g").Warn("changed", "n", 1)
	log.Error("failed")
	want := []string{
		"<7>level=DEBUG msg=stage table=sesame secret=x",
		"<6>level=INFO msg=open table=sesame",
		"<4>level=WARN msg=changed table=sesame g.n=1",
		"<3>level=ERROR msg=failed table=sesame",
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if NewHandler(&buf, nil) == nil {
		t.Error("NewHandler(w, nil) = nil")
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// journalHandler prefixes each line with its syslog priority, "<3>" to
// "<7>", which journald reads off a service's stdout and stderr
// (SyslogLevelPrefix=, on by default): `journalctl -p warning` then shows
// warnings and errors only.
type journalHandler struct {
	mu *sync.Mutex // one record at a time: prefix, then the line
	w  *prefixWriter
	h  slog.Handler
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// newJournalHandler builds a text handler on w whose lines carry their
// priority.
func newJournalHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	pw := &prefixWriter{w: w}
	return journalHandler{mu: &sync.Mutex{}, w: pw, h: slog.NewTextHandler(pw, opts)}
}

// priority maps a slog level to syslog's: err, warning, info, debug.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

func (j journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return j.h.Enabled(ctx, l)
}

func (j journalHandler) Handle(ctx context.Context, r slog.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.prefix = priority(r.Level)
	return j.h.Handle(ctx, r)
}

func (j journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{mu: j.mu, w: j.w, h: j.h.WithAttrs(as)}
}

func (j journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{mu: j.mu, w: j.w, h: j.h.WithGroup(name)}
}

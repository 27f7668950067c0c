// Package journal is the slog handler for a service whose stderr goes to
// systemd's journal: text lines without a timestamp (the journal adds its
// own), each prefixed with its syslog priority, "<3>" to "<7>", which
// journald reads off the stream (SyslogLevelPrefix=, on by default), so
// that `journalctl -p warning` shows warnings and errors only.
package journal

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Attached reports whether the process's output goes to the journal
// (systemd sets JOURNAL_STREAM for a service's stdout and stderr).
func Attached() bool { return os.Getenv("JOURNAL_STREAM") != "" }

// handler prefixes each line with its priority.
type handler struct {
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

// NewHandler builds a text handler on w whose lines carry their priority
// and no time. opts may be nil.
func NewHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	pw := &prefixWriter{w: w}
	return handler{mu: &sync.Mutex{}, w: pw, h: slog.NewTextHandler(pw, &o)}
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

func (j handler) Enabled(ctx context.Context, l slog.Level) bool {
	return j.h.Enabled(ctx, l)
}

func (j handler) Handle(ctx context.Context, r slog.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.prefix = priority(r.Level)
	return j.h.Handle(ctx, r)
}

func (j handler) WithAttrs(as []slog.Attr) slog.Handler {
	return handler{mu: j.mu, w: j.w, h: j.h.WithAttrs(as)}
}

func (j handler) WithGroup(name string) slog.Handler {
	return handler{mu: j.mu, w: j.w, h: j.h.WithGroup(name)}
}

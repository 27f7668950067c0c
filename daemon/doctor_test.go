package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/doctor"
	"github.com/sesame-knock/sesame/logevent"
)

// TestLogFindings: at startup the daemon logs each of doctor's findings
// as one warning, and a ruleset it cannot read as one warning.
func TestLogFindings(t *testing.T) {
	t.Parallel()
	p := testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp") // opens 22/tcp
	dropAll := doctor.Ruleset{Tables: []doctor.Table{
		{Family: "inet", Name: p.Table},
		{Family: "inet", Name: "filter", Chains: []doctor.Chain{{Name: "input", Hook: "input", Type: "filter", Policy: doctor.Drop}}},
	}}
	for _, c := range []struct {
		name string
		rs   doctor.Ruleset
		err  error
		want []string
	}{
		{name: "policy drop", rs: dropAll, want: []string{"level=WARN msg=" + logevent.DoctorFinding + " kind=blocked port=22/tcp where=\"table inet filter chain input policy drop\""}},
		{name: "clean", rs: doctor.Ruleset{Tables: dropAll.Tables[:1]}},
		{name: "unreadable", err: errors.New("netlink: boom"), want: []string{"level=WARN msg=" + logevent.DoctorFailed + " err=\"netlink: boom\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			logFindings(log, p, func(...doctor.ReadOption) (doctor.Ruleset, error) { return c.rs, c.err })
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(c.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(c.want), buf.String())
			}
			for i, w := range c.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d:\n got %s\nwant %s...", i, lines[i], w)
				}
			}
		})
	}
}

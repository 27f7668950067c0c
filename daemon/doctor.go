package daemon

import (
	"log/slog"

	"github.com/sesame-knock/sesame/doctor"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
)

// logFindings logs what `sesame doctor` says about p's ports, one warning
// a finding: another firewall that still drops a knocker, a rewrite that
// takes a port past sesame's chain. It reads the ruleset once, at startup
// (read is doctor.Read; tests pass a fake).
func logFindings(log *slog.Logger, p *policy.Policy, read func(...doctor.ReadOption) (doctor.Ruleset, error)) {
	rs, err := read()
	if err != nil {
		log.Warn(logevent.DoctorFailed, "err", err.Error())
		return
	}
	for _, f := range doctor.Diagnose(rs, doctor.InputOf(p)) {
		log.Warn(logevent.DoctorFinding, "kind", string(f.Kind), "port", f.Port, "where", f.Where.String(), "detail", f.Detail, "fix", f.Fix)
	}
}

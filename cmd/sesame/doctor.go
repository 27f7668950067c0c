package main

import (
	"fmt"
	"io"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/doctor"
	"github.com/sesame-knock/sesame/policy"
)

// doctorCmd reads the live ruleset and says what else on the host would
// block a client that sesame lets in, or let one in that sesame does not
// see: exit 0 clean, 1 findings (or the ruleset unreadable).
func doctorCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", "doctor [-c FILE]")
	path := fs.configFlag("config `file`")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	p, diags := policy.Load(*path)
	if diags.HasErrors() {
		diags.Write(stderr, false)
		return exitStatus(1)
	}
	rs, err := doctor.Read()
	if err != nil {
		if e := explainPerm(err); e != nil {
			return e
		}
		return err
	}
	if len(p.Interfaces) == 0 && p.Forwards() {
		// as the daemon does: the forward chain's outside interfaces are
		// the default-route ones (none found: any interface is outside)
		p.Interfaces, _ = capture.DefaultInterfaces()
	}
	in := doctor.InputOf(p)
	found := doctor.Diagnose(rs, in)
	for _, f := range found {
		fmt.Fprintln(stdout, f)
	}
	if len(found) > 0 {
		return exitStatus(1)
	}
	fmt.Fprintf(stdout, "ok: nothing else on the host blocks or bypasses the %d guarded port(s) and %d forwarded target(s)\n", len(in.Ports), len(in.Forwards))
	return nil
}

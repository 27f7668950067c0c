package policy

import (
	"strings"
	"testing"
)

// TestSummaryEveryKind: `sesame check` describes each door as what it is.
// Regression test for issue 12: on main the TOTP door of reference.hcl
// printed as "vault: knock  within 5s" and the one-time door as a static
// one.
func TestSummaryEveryKind(t *testing.T) {
	t.Parallel()
	p := *referencePolicy
	p.Doors = append(append([]Door(nil), p.Doors...), referenceVault, referenceOnce, referenceSPA)
	got := p.Summary()
	for _, line := range []string{
		"  ssh: knock 7000/tcp,8000/udp,9000/tcp within 10s",
		"  vault: totp 4 of 20000-29999/tcp, new every 30s, skew 1, 2 client(s), opens 2222/tcp for 30s\n",
		"  once: one-time 2 left in testdata/reference.seqs, next 7501/tcp,7502/udp,7503/tcp within 5s, opens 2223/tcp for 30s\n",
		"  spa: spa 62201/udp, max age 2m, client timeout up to 5m, 1 client(s), opens up to 22/tcp,443/tcp for 30s\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("Summary() has no line %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "vault: knock") || strings.Contains(got, "once: knock") {
		t.Errorf("a TOTP or one-time door summarized as a static one:\n%s", got)
	}
	done := referenceOnce
	done.OneTime, done.Sequence = nil, nil
	p.Doors = []Door{done}
	if got := p.Summary(); !strings.Contains(got, "  once: one-time 0 left in testdata/reference.seqs (exhausted), opens 2223/tcp for 30s\n") {
		t.Errorf("Summary() of an exhausted one-time door:\n%s", got)
	}
}

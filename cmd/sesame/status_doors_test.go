package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
)

// TestStatusDoorSteps: STEPS in `sesame status` is what a knock on the
// door takes, for every kind. Regression test for issue 12: on main TOTP
// and SPA doors showed 0.
func TestStatusDoorSteps(t *testing.T) {
	t.Parallel()
	open := []policy.PortProto{{Port: 22, Proto: policy.TCP}}
	seq := []policy.PortProto{{Port: 7000, Proto: policy.TCP}, {Port: 8000, Proto: policy.UDP}}
	p := &policy.Policy{Doors: []policy.Door{
		{Name: "static", Sequence: seq, Open: open, OpenFor: time.Minute},
		{Name: "once", OneTimeFile: "s", OneTime: []policy.OneTimeSeq{{Line: 1, Steps: seq}}, Sequence: seq, Open: open, OpenFor: time.Minute},
		{Name: "vault", TOTP: &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Proto: policy.TCP}, Open: open, OpenFor: time.Minute},
		{Name: "spa", SPA: &policy.SPA{Port: 62201}, Open: open, OpenFor: time.Minute},
	}}
	want := []statusDoor{
		{Name: "static", Open: "22/tcp", OpenFor: 60, Steps: 2},
		{Name: "once", Open: "22/tcp", OpenFor: 60, Steps: 2},
		{Name: "vault", Open: "22/tcp", OpenFor: 60, Steps: 4},
		{Name: "spa", Open: "22/tcp", OpenFor: 60, Steps: 1},
	}
	if diff := cmp.Diff(want, doorsOf(p)); diff != "" {
		t.Errorf("doorsOf (-want +got):\n%s", diff)
	}
}

package fleet

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	l := Limiter{Rate: 2, Burst: 3}
	ok := Decision{Origin: "a", ID: "1"}
	admit := func(origin string, at time.Duration) bool {
		d := ok
		d.Origin = origin
		return l.Admit(d, t0.Add(at)).Applies()
	}
	for i := range 3 {
		if !admit("a", 0) {
			t.Fatalf("burst record %d refused", i)
		}
	}
	if admit("a", 0) {
		t.Error("a 4th record at once passed a burst of 3")
	}
	if !admit("b", 0) {
		t.Error("another origin shares a's budget")
	}
	if admit("a", 400*time.Millisecond) {
		t.Error("0.8 tokens after 400 ms at 2/s admitted a record")
	}
	if !admit("a", 500*time.Millisecond) {
		t.Error("1 token after 500 ms at 2/s refused")
	}
	// A clock step backwards refills nothing.
	if admit("a", -time.Hour) {
		t.Error("a clock step back refilled the bucket")
	}
	// A refusal passes through untouched and uses no token.
	refused := Decision{Reason: ReasonExpired, Origin: "c"}
	for range 10 {
		if got := l.Admit(refused, t0); got.Reason != ReasonExpired {
			t.Fatalf("refusal became %v", got.Reason)
		}
	}
	if !admit("c", 0) {
		t.Error("refusals used up c's budget")
	}
	d := ok
	d.Origin = "a"
	if got := l.Admit(d, t0.Add(500*time.Millisecond)); got.Reason != ReasonRateLimited || got.Origin != "a" || got.Timeout != 0 {
		t.Errorf("over the cap: %+v", got)
	}
}

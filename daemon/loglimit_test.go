package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// spoofedSrc returns the i-th forged source, in 198.18.0.0/15.
func spoofedSrc(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

// countLines counts the log lines with msg=msg that carry every field in
// kv ("key=value").
func countLines(log, msg string, kv ...string) int {
	n := 0
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, " msg="+msg+" ") {
			continue
		}
		ok := true
		for _, f := range kv {
			ok = ok && strings.Contains(line, " "+f)
		}
		if ok {
			n++
		}
	}
	return n
}

// A spoofed flood to a first port then another port (a stage and a reset
// per source) writes hitLogsPerSecond lines a second, each marked
// spoofable; the rest are summed up per door and kind in one log-summary
// line once summaryEvery has passed; a static open in the same second
// still gets its line (its own budget).
func TestLoopRateLimitsSpoofableLines(t *testing.T) {
	t.Parallel()
	l, buf, now := newTestLoop(t, &fakeTable{}, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
	const sources = 1000
	for i := range sources {
		for _, port := range []uint16{7000, 2222} {
			h := syn(port)
			h.Src = spoofedSrc(i)
			l.observe(h)
		}
	}
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
	}
	l.flush()
	log := buf.String()
	stages, resets := countLines(log, "stage"), countLines(log, "reset")
	if stages+resets != hitLogsPerSecond || countLines(log, "stage", "spoofable=true")+countLines(log, "reset", "spoofable=true") != stages+resets {
		t.Errorf("%d stage and %d reset lines for %d sources in one second, want %d in all, each with spoofable=true:\n%s",
			stages, resets, sources, hitLogsPerSecond, log)
	}
	if countLines(log, "open", "door=ssh", "src="+client.String(), "spoofable=true") != 1 {
		t.Errorf("the static open during the flood was not logged (with spoofable=true):\n%s", log)
	}

	buf.Reset()
	l.hitLog.summarize(l.log, now.Add(summaryEvery-time.Millisecond), false)
	if buf.Len() != 0 {
		t.Errorf("summary before %s: %s", summaryEvery, buf)
	}
	*now = now.Add(summaryEvery)
	l.hitLog.summarize(l.log, *now, false)
	// 1000 stages (the client's 2 are in it too, 1002) and 1000 resets, less
	// the 20 lines logged: 10 of each, as they alternated.
	want := "msg=log-summary door=ssh suppressed=1982 stage=992 reset.other-port=990 every=5s"
	if got := strings.TrimSpace(buf.String()); !strings.HasSuffix(got, want) || strings.Count(got, "\n") != 0 {
		t.Errorf("summary:\n%s\nwant one line ending in %q", got, want)
	}
	buf.Reset()
	l.hitLog.summarize(l.log, now.Add(summaryEvery), false)
	if buf.Len() != 0 {
		t.Errorf("a second summary with nothing suppressed since: %s", buf)
	}

	// A new second has a new budget.
	h := syn(7000)
	h.Src = spoofedSrc(sources + 1)
	l.observe(h)
	if countLines(buf.String(), "stage", "src="+h.Src.String()) != 1 {
		t.Errorf("no stage line in the next second:\n%s", buf)
	}
}

// spoofable: only a knock that proved a secret that cannot be replayed
// (TOTP, one-time, SPA) names an authenticated source.
func TestSpoofable(t *testing.T) {
	t.Parallel()
	static := &policy.Door{Name: "s"}
	tests := []struct {
		door *policy.Door
		kind knock.Kind
		want bool
	}{
		{static, knock.Stage, true},
		{static, knock.Reset, true},
		{static, knock.Timeout, true},
		{static, knock.Open, true},
		{static, knock.Close, true},
		{&policy.Door{TOTP: &policy.TOTP{}}, knock.Open, false},
		{&policy.Door{TOTP: &policy.TOTP{}}, knock.Reset, true},
		{&policy.Door{OneTimeFile: "/x"}, knock.Open, false},
		{&policy.Door{OneTimeFile: "/x"}, knock.Stage, true},
		{&policy.Door{SPA: &policy.SPA{}}, knock.Open, false},
	}
	for _, tt := range tests {
		if got := spoofable(&knock.Decision{Kind: tt.kind, Door: tt.door}); got != tt.want {
			t.Errorf("spoofable(%v of %+v) = %v, want %v", tt.kind, tt.door, got, tt.want)
		}
	}
}

// A suppressed line costs no allocation: the flood's packets stay on the
// 0-alloc path.
func TestSuppressedLineAllocatesNothing(t *testing.T) {
	l, _, _ := newTestLoop(t, &fakeTable{}, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
	d := knock.Decision{Kind: knock.Reset, Door: &l.p.Doors[0], Src: spoofedSrc(1), Reason: knock.OtherPort}
	for range hitLogsPerSecond + 1 {
		l.logDecision(&d)
	}
	if n := testing.AllocsPerRun(1000, func() { l.logDecision(&d) }); n != 0 {
		t.Errorf("a suppressed line allocates %v times, want 0", n)
	}
}

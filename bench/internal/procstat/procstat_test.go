package procstat

import (
	"os"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	// Burn some CPU so that user time is at least one tick.
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	u, err := Read(os.Getpid(), false)
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSKiB <= 0 || u.PeakRSSKiB < u.RSSKiB || u.CPU <= 0 {
		t.Errorf("usage of this process: %+v", u)
	}
	if _, err := Read(-1, true); err == nil {
		t.Error("no error for pid -1")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(5, 4, 3, 2, 1, 10, 9, 8, 7, 6), 90, 9 * time.Millisecond},
		{ms(5, 4, 3, 2, 1, 10, 9, 8, 7, 6), 100, 10 * time.Millisecond},
		{ms(7), 1, 7 * time.Millisecond},
	} {
		if got := Percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.ds, tc.p, got, tc.want)
		}
	}
}

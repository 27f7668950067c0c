package fleet

import "time"

// Limiter caps how many records each origin may have applied: a token
// bucket per origin, Rate records a second with bursts of Burst. It reads
// no clock (now is a parameter) and takes no locks. Origins are members,
// so the number of buckets is bounded by the members file.
type Limiter struct {
	Rate  float64 // records a second, per origin
	Burst int     // at least 1

	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Admit passes d through unless it applies and its origin is over the cap;
// then it returns d refused with ReasonRateLimited. Only records that
// passed every other check use up the origin's budget, so forged records
// cannot spend an honest member's.
func (l *Limiter) Admit(d Decision, now time.Time) Decision {
	if !d.Applies() || l.allow(d.Origin, now) {
		return d
	}
	return Decision{Reason: ReasonRateLimited, Kind: d.Kind, Origin: d.Origin, ID: d.ID, DoorName: d.DoorName, SrcText: d.SrcText}
}

func (l *Limiter) allow(origin string, now time.Time) bool {
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	burst := float64(max(l.Burst, 1))
	b, ok := l.buckets[origin]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[origin] = b
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(burst, b.tokens+dt.Seconds()*l.Rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

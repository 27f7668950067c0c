package knock

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sesame-knock/sesame/policy"
)

// bytesIn hands out fuzz bytes, then zeros.
type bytesIn []byte

func (b *bytesIn) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

var (
	fuzzKnock  = pps("7000/tcp,7001/tcp,7002/udp,7003/tcp")
	fuzzPorts  = append(pps("22/tcp,53/udp"), fuzzKnock...) // what hits go to
	fuzzSrcs   = []string{"198.51.100.1", "2001:db8::1", "::ffff:198.51.100.1", "203.0.113.9"}
	fuzzFlags  = []uint8{syn, syn, synAck, ack, fin, fin | syn, 0}
	fuzzFilter = []policy.TCPFlags{
		policy.DefaultTCPFlags,
		{Mask: syn, Want: syn},          // "syn"
		{Mask: fin | syn, Want: fin},    // "fin,!syn"
		{Mask: syn | ack, Want: synAck}, // "syn,ack"
	}
)

// fuzzSeq decodes 1..max steps over fuzzKnock without consecutive repeats,
// as validation demands.
func fuzzSeq(b *bytesIn, max int) []policy.PortProto {
	n := 1 + int(b.next())%max
	out := make([]policy.PortProto, 0, n)
	for range n {
		p := fuzzKnock[int(b.next())%len(fuzzKnock)]
		if len(out) > 0 && out[len(out)-1] == p {
			p = fuzzKnock[(int(b.next())+1)%len(fuzzKnock)]
			if out[len(out)-1] == p {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func fuzzPolicy(b *bytesIn) *policy.Policy {
	p := &policy.Policy{}
	for i := range 1 + int(b.next())%3 {
		d := policy.Door{
			Name:       string(rune('a' + i)),
			Sequence:   fuzzSeq(b, 4),
			SeqTimeout: time.Duration(1+b.next()%5) * 100 * time.Millisecond,
			TCPFlags:   fuzzFilter[int(b.next())%len(fuzzFilter)],
		}
		if b.next()%2 == 1 {
			d.CloseSequence = fuzzSeq(b, 3)
		}
		p.Doors = append(p.Doors, d)
	}
	return p
}

// fuzzEvent is a hit, or an Expire when expire is set.
type fuzzEvent struct {
	h      Hit
	now    time.Time
	expire bool
}

func (e fuzzEvent) String() string {
	at := e.now.Sub(t0)
	if e.expire {
		return fmt.Sprintf("+%v expire", at)
	}
	return fmt.Sprintf("+%v %s %v flags %#02x", at, e.h.Src, e.h.Step(), e.h.Flags)
}

// fuzzEvents decodes events: an Expire, a burst that plays (a prefix of) one
// of p's sequences from one source with the door's wanted flags, or one
// random hit.
func fuzzEvents(b *bytesIn, p *policy.Policy) []fuzzEvent {
	var out []fuzzEvent
	now := t0
	for len(*b) > 0 {
		op := b.next()
		now = now.Add(time.Duration(op>>5) * 30 * time.Millisecond) // 0..210ms
		src := netip.MustParseAddr(fuzzSrcs[int(op>>3)%len(fuzzSrcs)])
		switch op & 7 {
		case 0:
			out = append(out, fuzzEvent{now: now, expire: true})
		case 1:
			d := &p.Doors[int(b.next())%len(p.Doors)]
			seq := d.Sequence
			if b.next()%2 == 1 && d.CloseSequence != nil {
				seq = d.CloseSequence
			}
			for _, st := range seq[:1+int(b.next())%len(seq)] {
				now = now.Add(time.Duration(b.next()%4) * 20 * time.Millisecond)
				out = append(out, fuzzEvent{h: Hit{Src: src, Proto: st.Proto, Port: st.Port, Flags: d.TCPFlags.Want}, now: now})
			}
		default:
			pp := fuzzPorts[int(b.next())%len(fuzzPorts)]
			h := Hit{Src: src, Proto: pp.Proto, Port: pp.Port}
			if f := b.next(); f < 0xf0 {
				h.Flags = fuzzFlags[int(f)%len(fuzzFlags)]
			} else {
				h.Flags = f // any byte, even for UDP
			}
			out = append(out, fuzzEvent{h: h, now: now})
		}
	}
	return out
}

var cmpDecisions = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b *policy.Door) bool { return a == b }),
}

// pastHit is a hit in a source's history, for the independent check.
type pastHit struct {
	step  policy.PortProto
	proto policy.Proto
	flags uint8
	at    time.Time
}

// completedInTime checks a door's Open or Close against the source's own
// history, independently of any matcher: the hits of the sequence's
// protocols that pass the door's filter, at any port, with immediate
// repeats merged, end with the whole sequence, and its first step came
// within seq_timeout.
func completedInTime(hist []pastHit, d *policy.Door, steps []policy.PortProto, now time.Time) bool {
	type run struct {
		step policy.PortProto
		last time.Time
	}
	uses := map[policy.Proto]bool{}
	for _, s := range steps {
		uses[s.Proto] = true
	}
	var runs []run
	for _, h := range hist {
		if !uses[h.proto] || h.proto == policy.TCP && !d.TCPFlags.Match(h.flags) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].step == h.step {
			runs[n-1].last = h.at
			continue
		}
		runs = append(runs, run{h.step, h.at})
	}
	if len(runs) < len(steps) {
		return false
	}
	tail := runs[len(runs)-len(steps):]
	for i, s := range steps {
		if tail[i].step != s {
			return false
		}
	}
	return now.Sub(tail[0].last) <= d.SeqTimeout
}

func FuzzMatcher(f *testing.F) {
	f.Add([]byte{0x02, 0x03, 0, 1, 2, 1, 1, 0, 3, 2, 1, 0x21, 2, 0, 0x22, 3, 0, 0x41, 4, 0, 0x20, 0xff, 5, 0})
	f.Add([]byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x00, 0x02, 0x01, 0x06, 0x02, 0x03, 0x07, 0x02})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := bytesIn(data)
		p := fuzzPolicy(&b)
		evs := fuzzEvents(&b, p)

		const smallCap = 4
		small := New(p, Config{MaxEntries: smallCap})
		synced := newRef(p) // told what small evicts
		var evicted []eviction
		small.t.onEvict = func(victim int32, src netip.Addr, at int32) {
			evicted = append(evicted, eviction{int(at), refKey{int(victim), src}})
		}
		large := New(p, Config{MaxEntries: 64}) // 6 sequences × 3 sources: never full
		pure := newRef(p)

		hist := map[netip.Addr][]pastHit{}
		var opens, closes, resets, timeouts uint64
		for i, e := range evs {
			var gotS, gotL, wantS, wantL []Decision
			if e.expire {
				gotS, wantS = small.Expire(e.now), synced.expire(e.now)
				gotL, wantL = large.Expire(e.now), pure.expire(e.now)
			} else {
				src := e.h.Src.Unmap()
				hist[src] = append(hist[src], pastHit{e.h.Step(), e.h.Proto, e.h.Flags, e.now})
				evicted = evicted[:0]
				gotS = small.Observe(e.h, e.now)
				wantS = synced.observe(e.h, e.now, evicted)
				gotL, wantL = large.Observe(e.h, e.now), pure.observe(e.h, e.now, nil)
			}
			if diff := cmp.Diff(wantL, gotL, cmpDecisions); diff != "" {
				t.Fatalf("event %d %v: never-full matcher differs from the reference (-want +got):\n%s", i, e, diff)
			}
			if diff := cmp.Diff(wantS, gotS, cmpDecisions); diff != "" {
				t.Fatalf("event %d %v: matcher with cap %d differs from the reference told of its evictions (-want +got):\n%s", i, e, smallCap, diff)
			}
			if n := small.Len(); n > smallCap {
				t.Fatalf("event %d: Len %d above the cap %d", i, n, smallCap)
			}
			if small.Len() != len(synced.state) || large.Len() != len(pure.state) {
				t.Fatalf("event %d: Len %d/%d, reference holds %d/%d", i, small.Len(), large.Len(), len(synced.state), len(pure.state))
			}
			for _, d := range gotS {
				switch d.Kind {
				case Open, Close:
					if d.Kind == Open {
						opens++
					} else {
						closes++
					}
					steps := d.Door.Sequence
					if d.Close {
						steps = d.Door.CloseSequence
					}
					if !completedInTime(hist[d.Src], d.Door, steps, e.now) {
						t.Fatalf("event %d: %v of door %s for %s without its sequence in time; history %+v", i, d.Kind, d.Door.Name, d.Src, hist[d.Src])
					}
				case Reset:
					resets++
				case Timeout:
					timeouts++
				}
			}
		}
		if large.Stats().Evicted != 0 {
			t.Errorf("never-full matcher evicted %d entries", large.Stats().Evicted)
		}
		st := small.Stats()
		got := Stats{Tracked: st.Tracked, Opens: st.Opens, Closes: st.Closes, Resets: st.Resets, Expired: st.Expired}
		want := Stats{Tracked: uint64(len(synced.state)), Opens: opens, Closes: closes, Resets: resets, Expired: timeouts}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
	})
}

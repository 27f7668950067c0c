package knock

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

// spoofed returns the i-th address of 198.18.0.0/15.
func spoofed(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	before := pol(
		door("ssh", "7000,8000,9000", "9000,8000,7000"),
		door("web", "6000,6001,6002", ""),
		door("slow", "5000,5001,5002", ""),
		door("flags", "4000,4001,4002", ""),
		door("gone", "3000,3001,3002", ""),
	)
	// The same ssh door in a new Policy value, moved to another index and with
	// a different close sequence and open ports; web's steps, slow's timeout
	// and flags' filter changed; gone was removed; new is new.
	ssh := door("ssh", "7000,8000,9000", "9000,7000")
	ssh.Open = pps("2222/tcp")
	web := door("web", "6000,6001,6003", "")
	slow := door("slow", "5000,5001,5002", "")
	slow.SeqTimeout = 10 * time.Second
	flags := door("flags", "4000,4001,4002", "")
	flags.TCPFlags = policy.TCPFlags{Mask: syn, Want: syn}
	after := pol(door("new", "3000,3001,3002", ""), web, slow, flags, ssh)

	m := New(before, Config{MaxEntries: 64})
	// One source per door, each at stage 2.
	for i, st := range []struct{ src, p1, p2 string }{
		{srcA, "7000", "8000"}, {"192.0.2.3", "6000", "6001"}, {"192.0.2.4", "5000", "5001"},
		{"192.0.2.5", "4000", "4001"}, {"192.0.2.6", "3000", "3001"},
	} {
		at := time.Duration(i) * time.Millisecond
		m.Observe(s(at, st.src, st.p1).hit(), t0.Add(at))
		m.Observe(s(at, st.src, st.p2).hit(), t0.Add(at))
	}
	// Only the five open machines hold entries.
	if got := m.Len(); got != 5 {
		t.Fatalf("Len before Update = %d, want 5", got)
	}
	m.Update(after)
	if got := m.Len(); got != 1 {
		t.Errorf("Len after Update = %d, want 1 (only ssh's entry kept)", got)
	}
	got := run(t, m, []ev{
		s(time.Second, srcA, "9000"),
		s(time.Second, "192.0.2.3", "6002"), // web's source: entry dropped
		s(time.Second, "192.0.2.3", "6003"),
		s(time.Second, "192.0.2.4", "5002"), // slow's
		s(time.Second, "192.0.2.5", "4002"), // flags'
	})
	want := []string{
		"#0 open ssh 198.51.100.2 3/3 9000/tcp",
		"#0 stage ssh(close) 198.51.100.2 1/2 9000/tcp",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions after Update (-want +got):\n%s", diff)
	}
	// Decisions point into the new policy.
	ds := m.Observe(s(2*time.Second, srcB, "3000").hit(), t0.Add(2*time.Second))
	if len(ds) != 1 || ds[0].Door != &after.Doors[0] {
		t.Errorf("Door of a decision after Update = %p, want %p (into the new policy)", ds[0].Door, &after.Doors[0])
	}
	// Expire still works on the renumbered machines.
	got = run(t, m, []ev{expireAt(time.Hour)})
	want = []string{
		"#0 timeout ssh(close) 198.51.100.2 1/2",
		"#0 timeout new 203.0.113.7 1/3",
	}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("Expire after Update (-want +got):\n%s", diff)
	}
	if m.Len() != 0 {
		t.Errorf("Len after Expire = %d, want 0", m.Len())
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestUpdateToNil(t *testing.T) {
	t.Parallel()
	m := New(pol(door("d", "7000,8000", "")), Config{MaxEntries: 4})
	m.Observe(s(0, srcA, "7000").hit(), t0)
	m.Update(nil)
	if m.Len() != 0 {
		t.Errorf("Len after Update(nil) = %d, want 0", m.Len())
	}
	if ds := m.Observe(s(0, srcA, "8000").hit(), t0); len(ds) != 0 {
		t.Errorf("Observe with no doors = %v, want none", ds)
	}
}

// TestFloodCannotEvictProgress fills the table with stage-1 entries, floods it
// with ten times its size of distinct spoofed first-port hits, and checks
// that a source further along survives and opens.
func TestFloodCannotEvictProgress(t *testing.T) {
	t.Parallel()
	const size = 1024
	m := New(pol(door("ssh", "7000,8000,9000", "")), Config{MaxEntries: size})
	now := t0
	m.Observe(s(0, srcA, "7000").hit(), now)
	m.Observe(s(0, srcA, "8000").hit(), now)
	for i := range 11 * size {
		now = now.Add(100 * time.Microsecond) // 11k hits in 1.1s: within seq_timeout
		h := Hit{Src: spoofed(i), Proto: policy.TCP, Port: 7000, Flags: syn}
		ds := m.Observe(h, now)
		if len(ds) != 1 || ds[0].Kind != Stage {
			t.Fatalf("flood hit %d: got %v, want one Stage", i, ds)
		}
		if m.Len() > size {
			t.Fatalf("Len = %d after flood hit %d, above the cap %d", m.Len(), i, size)
		}
	}
	if got, want := m.Stats().Evicted, uint64(11*size-(size-1)); got != want {
		t.Errorf("Evicted = %d, want %d", got, want)
	}
	ds := m.Observe(s(0, srcA, "9000").hit(), now)
	if len(ds) != 1 || ds[0].Kind != Open || ds[0].Src != netip.MustParseAddr(srcA) {
		t.Errorf("last step after the flood: got %v, want Open for %s", ds, srcA)
	}
	// The newest flood entries are still there, the oldest were evicted.
	last := Hit{Src: spoofed(11*size - 1), Proto: policy.TCP, Port: 8000, Flags: syn}
	if ds := m.Observe(last, now); len(ds) != 1 || ds[0].Kind != Stage || ds[0].Stage != 2 {
		t.Errorf("newest flood source: got %v, want Stage 2", ds)
	}
	first := Hit{Src: spoofed(0), Proto: policy.TCP, Port: 8000, Flags: syn}
	if ds := m.Observe(first, now); len(ds) != 0 {
		t.Errorf("oldest flood source: got %v, want nothing (evicted)", ds)
	}
}

// TestEvictionOrder checks least-recently-changed order within a level, and
// that advanced entries go only when no stage-1 entry is left.
func TestEvictionOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		evs  []ev
		want []string
	}{{
		name: "oldest stage-1 entry goes first",
		evs: []ev{
			s(0, srcA, "7000"), s(1, srcB, "7000"),
			s(2, srcA, "7000"), // a repeat is not a change
			s(3, src6, "7000"), // evicts A
			s(4, srcA, "8000"), s(5, srcB, "8000"),
		},
		want: []string{
			"#0 stage d 198.51.100.2 1/3 7000/tcp",
			"#1 stage d 203.0.113.7 1/3 7000/tcp",
			"#3 stage d 2001:db8::1 1/3 7000/tcp",
			"#5 stage d 203.0.113.7 2/3 8000/tcp",
		},
	}, {
		name: "a stage-1 entry goes before an older advanced one",
		evs: []ev{
			s(0, srcA, "7000"), s(1, srcA, "8000"), s(2, srcB, "7000"),
			s(3, src6, "7000"), // evicts B, not A
			s(4, srcA, "9000"), s(5, srcB, "8000"),
		},
		want: []string{
			"#0 stage d 198.51.100.2 1/3 7000/tcp",
			"#1 stage d 198.51.100.2 2/3 8000/tcp",
			"#2 stage d 203.0.113.7 1/3 7000/tcp",
			"#3 stage d 2001:db8::1 1/3 7000/tcp",
			"#4 open d 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "with only advanced entries the least recently advanced goes",
		evs: []ev{
			s(0, srcA, "7000"), s(1, srcB, "7000"), s(2, srcB, "8000"), s(3, srcA, "8000"),
			s(4, src6, "7000"), // evicts B, advanced before A
			s(5, srcB, "9000"), s(6, srcA, "9000"),
		},
		want: []string{
			"#0 stage d 198.51.100.2 1/3 7000/tcp",
			"#1 stage d 203.0.113.7 1/3 7000/tcp",
			"#2 stage d 203.0.113.7 2/3 8000/tcp",
			"#3 stage d 198.51.100.2 2/3 8000/tcp",
			"#4 stage d 2001:db8::1 1/3 7000/tcp",
			"#6 open d 198.51.100.2 3/3 9000/tcp",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := New(pol(door("d", "7000,8000,9000", "")), Config{MaxEntries: 2})
			if diff := cmp.Diff(tt.want, run(t, m, tt.evs)); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			if m.Len() > 2 {
				t.Errorf("Len = %d, above the cap 2", m.Len())
			}
			if m.Stats().Evicted != 1 {
				t.Errorf("Evicted = %d, want 1", m.Stats().Evicted)
			}
		})
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	m := New(pol(door("d", "7000,8000", "8000,7000")), Config{})
	run(t, m, []ev{
		s(0, srcA, "7000"), s(1, srcA, "8000"), // open; close at stage 1
		s(2, srcA, "7000"),            // close; open at stage 1
		s(3, srcB, "7000"),            // open at stage 1
		s(4, srcB, "22"),              // reset
		s(10*time.Second, srcA, "22"), // timeout
	})
	want := Stats{Tracked: 0, Opens: 1, Closes: 1, Resets: 1, Expired: 1}
	if diff := cmp.Diff(want, m.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if len(m.t.e) != DefaultMaxEntries {
		t.Errorf("MaxEntries 0 gave a table of %d, want %d", len(m.t.e), DefaultMaxEntries)
	}
}

func TestDecisionPointsIntoPolicy(t *testing.T) {
	t.Parallel()
	p := pol(door("a", "7000,8000", ""), door("b", "7000", "9000"))
	m := New(p, Config{MaxEntries: 8})
	ds := m.Observe(s(0, srcA, "7000").hit(), t0)
	if len(ds) != 2 || ds[0].Door != &p.Doors[0] || ds[1].Door != &p.Doors[1] {
		t.Errorf("decisions %v do not point at the policy's doors", ds)
	}
}

func TestInvalidSource(t *testing.T) {
	t.Parallel()
	m := New(pol(door("d", "7000", "")), Config{MaxEntries: 8})
	if ds := m.Observe(Hit{Proto: policy.TCP, Port: 7000, Flags: syn}, t0); len(ds) != 0 {
		t.Errorf("hit without a source: got %v, want nothing", ds)
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	got := []string{
		Stage.String(), Open.String(), Close.String(), Reset.String(), Timeout.String(), Kind(0).String(),
		NoReason.String(), WrongPort.String(), OtherPort.String(), Reason(9).String(),
	}
	want := []string{"stage", "open", "close", "reset", "timeout", "kind(0)", "", "wrong-port", "other-port", "reason(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

// TestEvictionCanOnlyForget pins down why FuzzMatcher compares a small-cap
// matcher with a reference told of its evictions rather than asking that its
// Opens be a subset of an unbounded matcher's: forgetting an entry can turn a
// later repeat of the first step into a fresh start, and that start can
// complete in time where the unbounded matcher, still counting from the
// older first hit, times out. The Open is genuine (7000 at 4s, 8000 at 6s).
func TestEvictionCanOnlyForget(t *testing.T) {
	t.Parallel()
	evs := []ev{
		s(0, srcA, "7000"),
		s(1*sec, srcB, "7000"), // evicts A when the cap is 1
		s(4*sec, srcA, "7000"), // bounded: a fresh start; unbounded: a repeat
		s(6*sec, srcA, "8000"),
	}
	bounded := run(t, New(pol(door("d", "7000,8000", "")), Config{MaxEntries: 1}), evs)
	unbounded := run(t, New(pol(door("d", "7000,8000", "")), Config{MaxEntries: 8}), evs)
	if diff := cmp.Diff([]string{
		"#0 stage d 198.51.100.2 1/2 7000/tcp",
		"#1 stage d 203.0.113.7 1/2 7000/tcp",
		"#2 stage d 198.51.100.2 1/2 7000/tcp",
		"#3 open d 198.51.100.2 2/2 8000/tcp",
	}, bounded); diff != "" {
		t.Errorf("cap 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"#0 stage d 198.51.100.2 1/2 7000/tcp",
		"#1 stage d 203.0.113.7 1/2 7000/tcp",
		"#3 timeout d 198.51.100.2 1/2 8000/tcp",
	}, unbounded); diff != "" {
		t.Errorf("cap 8 (-want +got):\n%s", diff)
	}
}

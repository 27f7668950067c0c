package knock

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// src6n returns 2001:db8::n.
func src6n(n int) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[12], b[13], b[14], b[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return netip.AddrFrom16(b)
}

// mixedStream is the steady-state traffic of the benchmarks and of the
// allocation test: sources walking through a sequence, with a wrong port, a
// non-knock SYN, a retransmission and an ACK mixed in.
func mixedStream(sources int) []Hit {
	pattern := []struct {
		port  uint16
		proto policy.Proto
		flags uint8
	}{
		{7000, policy.TCP, syn}, {7000, policy.TCP, syn}, {8000, policy.UDP, 0},
		{22, policy.TCP, syn}, // reset other-port
		{7000, policy.TCP, syn}, {8000, policy.UDP, 0}, {443, policy.TCP, ack},
		{9000, policy.TCP, syn},                          // open
		{7000, policy.TCP, syn}, {9000, policy.TCP, syn}, // reset wrong-port
	}
	var out []Hit
	for _, p := range pattern {
		for i := range sources {
			src := spoofed(i)
			if i%2 == 1 {
				src = src6n(i)
			}
			out = append(out, Hit{Src: src, Proto: p.proto, Port: p.port, Flags: p.flags})
		}
	}
	return out
}

func benchPolicy() *policy.Policy {
	return pol(door("ssh", "7000/tcp,8000/udp,9000/tcp", "9000/tcp,8000/udp,7000/tcp"), door("web", "6000,6001", ""))
}

// BenchmarkObserve is steady state: 256 sources knocking, resetting and
// opening, well under the cap.
func BenchmarkObserve(b *testing.B) {
	m := New(benchPolicy(), Config{})
	hits := mixedStream(256)
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Microsecond)
		m.Observe(hits[i%len(hits)], now)
	}
}

// BenchmarkObserveChurn: 1M distinct sources hit the first port through a
// table of 65536 entries, so that every hit evicts.
func BenchmarkObserveChurn(b *testing.B) {
	d := door("ssh", "7000/tcp,8000/udp,9000/tcp", "")
	d.SeqTimeout = policy.MaxSeqTimeout
	m := New(pol(d), Config{MaxEntries: DefaultMaxEntries})
	const sources = 1 << 20
	srcs := make([]netip.Addr, sources)
	for i := range srcs {
		srcs[i] = src6n(i)
	}
	h := Hit{Proto: policy.TCP, Port: 7000, Flags: syn}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Nanosecond)
		h.Src = srcs[i%sources]
		m.Observe(h, now)
	}
	b.ReportMetric(float64(m.Stats().Evicted)/float64(b.N), "evictions/op")
}

// BenchmarkObserveFullSequence: one op is a whole 3-step knock that opens.
func BenchmarkObserveFullSequence(b *testing.B) {
	m := New(benchPolicy(), Config{})
	steps := []Hit{
		{Proto: policy.TCP, Port: 7000, Flags: syn},
		{Proto: policy.UDP, Port: 8000},
		{Proto: policy.TCP, Port: 9000, Flags: syn},
	}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		src := spoofed(i % 4096)
		for _, h := range steps {
			now = now.Add(time.Microsecond)
			h.Src = src
			m.Observe(h, now)
		}
	}
}

func BenchmarkExpire(b *testing.B) {
	m := New(benchPolicy(), Config{})
	h := Hit{Proto: policy.TCP, Port: 7000, Flags: syn}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Millisecond)
		h.Src = spoofed(i % 65536)
		m.Observe(h, now)
		m.Expire(now)
	}
}

// TestObserveDoesNotAllocate: in steady state, including evictions, resets,
// opens and sweeps, Observe and Expire allocate nothing.
func TestObserveDoesNotAllocate(t *testing.T) {
	m := New(benchPolicy(), Config{MaxEntries: 512})
	hits := mixedStream(1000) // more sources than entries: evicts
	now := t0
	i := 0
	step := func() {
		now = now.Add(time.Millisecond)
		if i%len(hits) == 0 {
			now = now.Add(10 * time.Second) // let every entry time out
		}
		m.Observe(hits[i%len(hits)], now)
		if i%100 == 0 {
			m.Expire(now)
		}
		i++
	}
	for range 3 * len(hits) { // warm up: buffers and map reach their size
		step()
	}
	if m.Stats().Evicted == 0 || m.Stats().Opens == 0 || m.Stats().Expired == 0 {
		t.Fatalf("stream does not exercise eviction, opens and expiry: %+v", m.Stats())
	}
	if n := testing.AllocsPerRun(3*len(hits), step); n != 0 {
		t.Errorf("Observe allocates %v times per hit in steady state, want 0", n)
	}
}

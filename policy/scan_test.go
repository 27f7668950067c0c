package policy_test

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// permute calls f with every ordering of ps (Heap's algorithm).
func permute(ps []policy.PortProto, f func([]policy.PortProto)) {
	var gen func(k int)
	gen = func(k int) {
		if k == 1 {
			f(ps)
			return
		}
		gen(k - 1)
		for i := range k - 1 {
			if k%2 == 0 {
				ps[i], ps[k-1] = ps[k-1], ps[i]
			} else {
				ps[0], ps[k-1] = ps[k-1], ps[0]
			}
			gen(k - 1)
		}
	}
	gen(len(ps))
}

// opens counts the orderings of probes (one per port and protocol) that
// open a door with the given steps in the real matcher, out of all of them.
func opens(t *testing.T, steps, probes []policy.PortProto) (n, of int) {
	t.Helper()
	p := &policy.Policy{Doors: []policy.Door{{
		Name: "d", Sequence: steps, SeqTimeout: time.Minute, TCPFlags: policy.DefaultTCPFlags,
		Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}},
	}}}
	m := knock.New(p, knock.Config{MaxEntries: 8})
	src := netip.AddrFrom4([4]byte{198, 51, 100, 2})
	now := time.Unix(1_700_000_000, 0)
	permute(probes, func(order []policy.PortProto) {
		of++
		now = now.Add(time.Hour) // a fresh start: whatever the last order left has timed out
		for _, pr := range order {
			for _, d := range m.Observe(knock.Hit{Src: src, Proto: pr.Proto, Port: pr.Port, Flags: policy.FlagSYN}, now) {
				if d.Kind == knock.Open {
					n++
				}
			}
		}
	})
	return n, of
}

func probes(ports int, protos ...policy.Proto) []policy.PortProto {
	var out []policy.PortProto
	for _, pr := range protos {
		for p := 1; p <= ports; p++ {
			out = append(out, policy.PortProto{Port: uint16(p), Proto: pr})
		}
	}
	return out
}

func pps(s string) []policy.PortProto {
	var out []policy.PortProto
	for f := range strings.SplitSeq(s, ",") {
		p, err := policy.ParsePortProto(f)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

// TestScanOddsMatchesMatcher checks the formula of ScanOdds against the
// matcher itself: over every order of a small scan (each port of each
// protocol once), the share of orders that open the door is P(n).
func TestScanOddsMatchesMatcher(t *testing.T) {
	t.Parallel()
	tcp, udp := policy.TCP, policy.UDP
	for _, tt := range []struct {
		steps  string
		probes []policy.PortProto
	}{
		{"3/tcp", probes(7, tcp)},
		{"3/tcp,5/tcp", probes(7, tcp)},
		{"3/tcp,5/tcp,2/tcp", probes(7, tcp)},
		{"6/tcp,1/tcp,4/tcp,2/tcp", probes(7, tcp)},
		{"3/tcp,4/tcp,5/tcp", probes(7, tcp)},
		{"1/tcp,3/udp,2/tcp", probes(4, tcp, udp)},
		{"2/udp,1/udp", probes(4, tcp, udp)}, // TCP probes do not count for a UDP door
	} {
		steps := pps(tt.steps)
		n, of := opens(t, steps, tt.probes)
		counted := 0
		for _, pr := range tt.probes {
			for _, s := range steps {
				if s.Proto == pr.Proto {
					counted++
					break
				}
			}
		}
		want := policy.ScanOddsOf(len(steps), counted)
		if got := float64(n) / float64(of); math.Abs(got-want) > 1e-12*want {
			t.Errorf("%s: %d of %d orders open it (%g), ScanOdds formula says %g", tt.steps, n, of, got, want)
		}
	}
	// A step that repeats: one scan never completes it; P(n) bounds it.
	if n, _ := opens(t, pps("3/tcp,5/tcp,3/tcp"), probes(6, tcp)); n != 0 {
		t.Errorf("a sequence that repeats a step opened in %d orders of one scan, want 0", n)
	}
}

func TestScanOdds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		steps string
		want  float64
		text  string
	}{
		{"7000/tcp", 1, "certain"},
		{"7000/tcp,8000/tcp", 1.0 / 65535, "1 in 65535"},
		{"7000/udp,8000/udp,9000/udp", 1.0 / 65535 / 65534, "1 in 4.3e9"},
		{"7000/tcp,8000/udp", 1.0 / 131070, "1 in 131070"},
		{"7000/tcp,8000/udp,9000/tcp", 1.0 / 131070 / 131069, "1 in 1.7e10"},
		{"1/tcp,2/tcp,3/tcp,4/tcp", 1.0 / 65535 / 65534 / 65533, "1 in 2.8e14"},
	} {
		got := policy.ScanOdds(pps(tt.steps))
		if rel := (got - tt.want) / tt.want; rel > 1e-12 || rel < -1e-12 {
			t.Errorf("ScanOdds(%s) = %g, want %g", tt.steps, got, tt.want)
		}
		if s := policy.FormatOdds(got); s != tt.text {
			t.Errorf("FormatOdds(ScanOdds(%s)) = %q, want %q", tt.steps, s, tt.text)
		}
	}
	for _, tt := range []struct {
		p    float64
		want string
	}{
		{0, "never"}, {2, "certain"}, {1.0 / 999999, "1 in 999999"}, {1.0 / 1e6, "1 in 1.0e6"}, {1.0 / 9.96e9, "1 in 1.0e10"},
	} {
		if got := policy.FormatOdds(tt.p); got != tt.want {
			t.Errorf("FormatOdds(%g) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestScanRisks(t *testing.T) {
	t.Parallel()
	fin, err := policy.ParseTCPFlags("fin,!ack")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		steps string
		flags policy.TCPFlags
		want  []string // summary: a phrase of the detail
	}{
		{"7000/tcp,8000/udp,9000/tcp", policy.DefaultTCPFlags, nil},
		{"7000/tcp", policy.DefaultTCPFlags, []string{"Short knock sequence: certain per full scan"}},
		{"7000/udp,9000/udp", policy.DefaultTCPFlags, []string{"Short knock sequence: odds 1 in 65535 per full scan"}},
		{"7000/udp,7001/udp,7002/udp", policy.DefaultTCPFlags, []string{"Knock steps in port order: a sweep in ascending port order"}},
		{"9002/tcp,9001/tcp,9000/tcp", policy.DefaultTCPFlags, []string{"Knock steps in port order: a sweep in descending port order"}},
		{"7000/tcp,7001/udp,7002/tcp", policy.DefaultTCPFlags, nil}, // no one-protocol sweep sends them back to back
		{"7000/tcp,8000/tcp,9000/tcp", fin, []string{"tcp_flags count scan probes: FIN and Xmas scans"}},
		{"7000/udp,8000/udp,9000/udp", fin, nil}, // flags do not apply to UDP steps
		{"7000/tcp,8000/tcp,9000/tcp", policy.TCPFlags{Mask: policy.FlagSYN, Want: 0}, []string{
			"tcp_flags count scan probes: NULL, FIN, Xmas, ACK and Maimon scans"}},
		{"7000/tcp,8000/tcp,9000/tcp", policy.TCPFlags{Mask: policy.FlagACK, Want: policy.FlagACK}, []string{
			"tcp_flags count scan probes: the packets of established connections too"}},
		{"7000/tcp,7001/tcp", fin, []string{
			"Short knock sequence: 1 in 65535",
			"Knock steps in port order: ascending",
			"tcp_flags count scan probes: odds 1 in 65535",
		}},
	} {
		var got []string
		for i, r := range policy.ScanRisks("d", pps(tt.steps), tt.flags) {
			if i < len(tt.want) {
				sum, phrase, _ := strings.Cut(tt.want[i], ": ")
				if r.Summary == sum && strings.Contains(r.Detail, phrase) && r.Flags == (sum == "tcp_flags count scan probes") {
					got = append(got, tt.want[i])
					continue
				}
			}
			got = append(got, r.Summary+": "+r.Detail)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ScanRisks(%s, %s) (-want +got):\n%s", tt.steps, tt.flags, diff)
		}
	}
}

func TestScanKinds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		flags string
		want  []string
	}{
		{"syn,!ack", nil},
		{"syn", nil},
		{"fin,!ack", []string{"FIN", "Xmas"}},
		{"!syn", []string{"NULL", "FIN", "Xmas", "ACK", "Maimon"}},
		{"ack", []string{"ACK", "Maimon"}},
		{"fin,psh,urg", []string{"Xmas"}},
	} {
		f, err := policy.ParseTCPFlags(tt.flags)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, f.ScanKinds()); diff != "" {
			t.Errorf("%q.ScanKinds() (-want +got):\n%s", tt.flags, diff)
		}
	}
}

func TestKnockTraffic(t *testing.T) {
	t.Parallel()
	fin := policy.TCPFlags{Mask: policy.FlagFIN | policy.FlagACK, Want: policy.FlagFIN}
	for _, tt := range []struct {
		name  string
		doors []policy.Door
		want  policy.KnockTraffic
	}{
		{"none", nil, policy.KnockTraffic{}},
		{"tcp only", []policy.Door{{Sequence: pps("7000/tcp,8000/tcp"), TCPFlags: policy.DefaultTCPFlags}},
			policy.KnockTraffic{TCP: []policy.TCPFlags{policy.DefaultTCPFlags}}},
		{"udp only: no tcp filter", []policy.Door{{Sequence: pps("7000/udp,8000/udp"), TCPFlags: fin}},
			policy.KnockTraffic{UDP: true}},
		{"udp in a close sequence", []policy.Door{{Sequence: pps("7000/tcp,8000/tcp"), CloseSequence: pps("1/udp,2/udp"), TCPFlags: fin}},
			policy.KnockTraffic{TCP: []policy.TCPFlags{fin}, UDP: true}},
		{"one-time lines", []policy.Door{{OneTime: []policy.OneTimeSeq{{Steps: pps("1/tcp,2/tcp")}, {Steps: pps("3/udp,4/tcp")}}, TCPFlags: fin}},
			policy.KnockTraffic{TCP: []policy.TCPFlags{fin}, UDP: true}},
		{"totp udp", []policy.Door{{TOTP: &policy.TOTP{Proto: policy.UDP}, TCPFlags: policy.DefaultTCPFlags}},
			policy.KnockTraffic{UDP: true}},
		{"totp tcp, filters deduplicated", []policy.Door{
			{TOTP: &policy.TOTP{Proto: policy.TCP}, TCPFlags: fin},
			{Sequence: pps("7000/tcp"), TCPFlags: policy.DefaultTCPFlags},
			{Sequence: pps("7001/tcp"), TCPFlags: fin},
		}, policy.KnockTraffic{TCP: []policy.TCPFlags{fin, policy.DefaultTCPFlags}}},
		{"spa", []policy.Door{{SPA: &policy.SPA{Port: 62201}, TCPFlags: policy.DefaultTCPFlags}}, policy.KnockTraffic{}},
	} {
		p := &policy.Policy{Doors: tt.doors}
		if diff := cmp.Diff(tt.want, p.KnockTraffic()); diff != "" {
			t.Errorf("%s: KnockTraffic (-want +got):\n%s", tt.name, diff)
		}
	}
}

package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// KnockTraffic is what can be a knock step of some door, at any port: TCP
// segments whose flags pass one of TCP, and every UDP datagram when UDP is
// set. The matcher follows every such packet to any port of this host
// (knock/doc.go, rule 6), so the capture filter passes all of them: a
// packet it dropped could not reset a sequence that a scan is walking.
type KnockTraffic struct {
	TCP []TCPFlags // the distinct tcp_flags of doors with a TCP step, in door order
	UDP bool       // some door has a UDP step
}

// KnockTraffic returns what the doors of p count as knocks: the protocols
// of every sequence, close sequence, one-time sequence and TOTP door, with
// the tcp_flags of the doors that have a TCP step. SPA doors count no
// knock.
func (p *Policy) KnockTraffic() KnockTraffic {
	var kt KnockTraffic
	for _, d := range p.Doors {
		tcp := false
		use := func(steps []PortProto) {
			for _, s := range steps {
				switch s.Proto {
				case TCP:
					tcp = true
				case UDP:
					kt.UDP = true
				}
			}
		}
		use(d.Sequence)
		use(d.CloseSequence)
		for _, s := range d.OneTime {
			use(s.Steps)
		}
		if d.Kind() == KindTOTP {
			use([]PortProto{{Proto: d.TOTP.Proto}})
		}
		if tcp && !slices.Contains(kt.TCP, d.TCPFlags) {
			kt.TCP = append(kt.TCP, d.TCPFlags)
		}
	}
	return kt
}

// ScanPorts is the number of ports one full scan of one protocol probes.
const ScanPorts = 65535

// ScanOdds returns the chance that one full scan that knows nothing opens
// a sequence: a scan that sends one probe to each port 1..65535 of each
// protocol the steps use, in a uniformly random order, from one address.
//
// Derivation. The matcher (knock/doc.go) follows every probe that counts:
// the expected next step advances, a repeat of the step just matched is
// ignored, the first step restarts at stage 1, and any other probe resets.
// A scan probes each port once, so it never repeats a step; the sequence
// s1..sn (distinct steps) then completes exactly when its n probes are sent
// back to back, in order (a restart on s1 leaves the same n probes to come).
// With M = ScanPorts × (protocols used) probes, all M! orders equally
// likely, the orders that hold s1..sn as one block, in order, are those of
// M-n+1 items (the block and the other probes): (M-n+1)! of them. So
//
//	P(n) = (M-n+1)! / M! = 1 / (M (M-1) ... (M-n+2))
//
// P(1) = 1 (any full scan opens a 1-step door), P(2) = 1/M (1 in 65535 for
// one protocol), P(3) = 1/(M(M-1)) (1 in 4.3e9). seq_timeout does not
// lower it: back-to-back probes arrive within any seq_timeout at scan
// rates. For a sequence that repeats a step (non-consecutively), one scan
// can never complete it and P(n) is an upper bound for a series of scans.
func ScanOdds(steps []PortProto) float64 {
	if len(steps) == 0 {
		return 0
	}
	return scanOdds(len(steps), ScanPorts*len(protocols(steps)))
}

// scanOdds is P(n) for a scan of m probes in all.
func scanOdds(n, m int) float64 {
	p := 1.0
	for i := range n - 1 {
		p /= float64(m - i)
	}
	return p
}

// protocols returns the distinct protocols of steps, in order of first use.
func protocols(steps []PortProto) []Proto {
	var out []Proto
	for _, s := range steps {
		if !slices.Contains(out, s.Proto) {
			out = append(out, s.Proto)
		}
	}
	return out
}

// FormatOdds renders a chance per full scan: "certain", "1 in 65535",
// "1 in 4.3e9", or "never" for 0.
func FormatOdds(p float64) string {
	switch {
	case p >= 1:
		return "certain"
	case p <= 0:
		return "never"
	}
	n := 1 / p
	if n < 1e6 {
		return fmt.Sprintf("1 in %.0f", n)
	}
	e := math.Floor(math.Log10(n))
	m := n / math.Pow(10, e)
	if math.Round(m*10) >= 100 { // 9.96e9 rounds to 10.0e9
		m, e = m/10, e+1
	}
	return fmt.Sprintf("1 in %.1fe%d", m, int(e))
}

// ScanKinds returns the port scans other than a SYN scan whose probes pass
// f, by their usual names: "NULL" (no flag), "FIN", "Xmas" (FIN, PSH,
// URG), "ACK" and "Maimon" (FIN, ACK).
func (f TCPFlags) ScanKinds() []string {
	var out []string
	for _, k := range []struct {
		name  string
		flags uint8
	}{
		{"NULL", 0}, {"FIN", FlagFIN}, {"Xmas", FlagFIN | FlagPSH | FlagURG},
		{"ACK", FlagACK}, {"Maimon", FlagFIN | FlagACK},
	} {
		if f.Match(k.flags) {
			out = append(out, k.name)
		}
	}
	return out
}

// ScanRisk is one reason why a scan that knows nothing may open a door.
type ScanRisk struct {
	Summary string // e.g. "Short knock sequence"
	Detail  string // what a scan does, with the odds, and what to do
	Flags   bool   // it is about tcp_flags (else about the sequence)
}

// ScanRisks returns the ways a port scan that knows nothing can open door
// name, whose sequence is steps with tcp_flags flags: a 1- or 2-step
// sequence (the odds of ScanOdds), steps that are consecutive ports in
// ascending or descending order (a sweep in that order opens the door),
// and flags that let other scans than SYN scans count.
func ScanRisks(name string, steps []PortProto, flags TCPFlags) []ScanRisk {
	var out []ScanRisk
	n := len(steps)
	if n == 0 {
		return nil
	}
	protos := protocols(steps)
	scan := "a scan of every " + joinProtos(protos) + " port"
	odds := FormatOdds(ScanOdds(steps))
	three := FormatOdds(scanOdds(3, ScanPorts*len(protos))) // what 3 steps would give
	switch n {
	case 1:
		out = append(out, ScanRisk{"Short knock sequence", fmt.Sprintf(
			"Door %q opens on one packet to %s: any port scan that reaches it opens the door (%s, %s per full scan). Use 3 or more steps (then %s per full scan).",
			name, steps[0], scan, odds, three), false})
	case 2:
		out = append(out, ScanRisk{"Short knock sequence", fmt.Sprintf(
			"A 2-step sequence is walked by chance: %s in random order opens door %q with odds %s per full scan (a full scan takes under a second at 100,000 packets a second). Use 3 or more steps (then %s per full scan).",
			scan, name, odds, three), false})
	}
	if dir := portOrder(steps); dir != "" {
		out = append(out, ScanRisk{"Knock steps in port order", fmt.Sprintf(
			"The steps of door %q (%s) are consecutive ports in %s order: a sweep in %s port order sends them back to back and opens the door, certainly, on its way. Spread the ports apart, in no particular order.",
			name, FormatPorts(steps), dir, dir), false})
	}
	if slices.Contains(protos, TCP) {
		if r, ok := FlagsRisk(name, flags, odds); ok {
			out = append(out, r)
		}
	}
	return out
}

// FlagsRisk returns the risk of door name's tcp_flags when they let other
// scans than SYN scans count (ScanKinds), and false when they do not. odds
// is the door's FormatOdds, or "" when unknown.
func FlagsRisk(name string, flags TCPFlags, odds string) (ScanRisk, bool) {
	kinds := flags.ScanKinds()
	if len(kinds) == 0 {
		return ScanRisk{}, false
	}
	chance := ""
	if odds != "" {
		chance = fmt.Sprintf(": each full one opens it with odds %s, as a SYN scan does a door with the default \"syn,!ack\"", odds)
	}
	conns := ""
	if flags.Match(FlagACK) || flags.Match(FlagACK|FlagPSH) {
		conns = " These flags pass the packets of established connections too: sesame would capture the TCP traffic of every connection to this host, and a knocking client's own connections would reset its progress."
	}
	return ScanRisk{"tcp_flags count scan probes", fmt.Sprintf(
		"tcp_flags %q passes the probes of %s scans, so those scans count as knocks on door %q, not only SYN scans%s. sesame captures every TCP packet that these flags pass, to any port of this host.%s Prefer the default.",
		flags, andList(kinds), name, chance, conns), true}, true
}

// portOrder returns "ascending" or "descending" when every step is the
// port after (before) the previous one, over one protocol, and "" otherwise.
func portOrder(steps []PortProto) string {
	if len(steps) < 2 {
		return ""
	}
	up, down := true, true
	for i := 1; i < len(steps); i++ {
		a, b := steps[i-1], steps[i]
		up = up && a.Proto == b.Proto && int(b.Port) == int(a.Port)+1
		down = down && a.Proto == b.Proto && int(b.Port) == int(a.Port)-1
	}
	switch {
	case up:
		return "ascending"
	case down:
		return "descending"
	}
	return ""
}

func joinProtos(ps []Proto) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return andList(s)
}

// andList joins "a", "b" and "c" as "a, b and c".
func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

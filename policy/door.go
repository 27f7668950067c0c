package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// door validates one door block. The returned doorSrc carries the ranges
// for the cross-door checks; its ports are marked not ok when invalid.
func (v *validator) door(rd *rawDoor) (Door, doorSrc) {
	d := Door{
		Name:       rd.Name,
		SeqTimeout: DefaultSeqTimeout,
		TCPFlags:   DefaultTCPFlags,
		OpenFor:    DefaultOpenFor,
	}
	src := doorSrc{name: rd.Name, nameRange: rd.NameRange}
	if !validDoorName(rd.Name) {
		v.add(errorf(rd.NameRange, "Invalid door name", "%q is not a door name: a name has 1 to 64 characters among letters, digits, \"_\", \".\" and \"-\" (it ends up in nft element comments and logs).", rd.Name))
	}

	dynamic := v.dynamicDoor(rd, &d)
	switch {
	case dynamic:
	case rd.Sequence == nil:
		v.add(errorf(rd.DefRange, "Missing required argument", "Door %q has no sequence; sequence is required (unless the door has a totp block or one_time_sequences): it is %s.", rd.Name, allowSequence))
	default:
		src.seq = v.portList(rd.Sequence, allowSequence)
		if src.seq.ok && !v.sequence(rd.Sequence.Name, src.seq, "this door could never open") {
			src.seq.ok = false
		}
		d.Sequence = src.seq.pp
	}
	if rd.CloseSequence != nil {
		src.close = v.portList(rd.CloseSequence, allowSequence)
		if src.close.ok && !v.sequence(rd.CloseSequence.Name, src.close, "this close sequence could never complete") {
			src.close.ok = false
		}
		d.CloseSequence = src.close.pp
	}
	if rd.Forward != nil {
		var ok bool
		if d.Forward, ok = v.forwardList(rd.Forward); !ok {
			d.Forward = nil
		}
	}
	switch {
	case rd.Open == nil && rd.Forward == nil:
		v.add(errorf(rd.DefRange, "Missing required argument", "Door %q has no open and no forward; open is required unless the door has forward (it may have both): open is %s; forward is %s.", rd.Name, allowOpen, allowForward))
	case rd.Open == nil:
	default:
		src.open = v.portList(rd.Open, allowOpen)
		if src.open.ok && !v.openList(src.open) {
			src.open.ok = false
		}
		d.Open = src.open.pp
	}
	if rd.Open == nil && rd.Forward != nil && d.Kind() == KindSPA {
		v.add(errorf(rd.Forward.NameRange, "SPA door without open", "Door %q is an spa door: an SPA request asks for ports of open, so it needs open; forward is granted beside them.", rd.Name))
	}

	var ok bool
	if d.SeqTimeout, ok = v.duration(rd.SeqTimeout, DefaultSeqTimeout, MinSeqTimeout, MaxSeqTimeout); !ok {
		d.SeqTimeout = DefaultSeqTimeout
	}
	if d.OpenFor, ok = v.duration(rd.OpenFor, DefaultOpenFor, MinOpenFor, MaxOpenFor); !ok {
		d.OpenFor = DefaultOpenFor
	}
	if rd.TCPFlags != nil {
		v.tcpFlags(rd, &d)
	}
	v.totpOpenOverlap(rd, &d)
	v.spaOnly(rd, &d)
	v.grantAttrs(rd, &d)
	v.hooks(rd, &d)
	v.scanRisks(rd, &d, src)
	return d, src
}

// scanRisks warns about door shapes that a port scan which knows nothing
// may open (ScanRisks), with the odds: at the sequence, or at
// one_time_sequences for the lines of its file, and at tcp_flags for the
// flags.
func (v *validator) scanRisks(rd *rawDoor, d *Door, src doorSrc) {
	warn := func(r ScanRisk, at hcl.Range, prefix string) {
		if r.Flags && rd.TCPFlags != nil {
			at = rd.TCPFlags.Expr.Range()
		}
		v.add(warnf(at, r.Summary, "%s%s", prefix, r.Detail))
	}
	switch d.Kind() {
	case KindStatic:
		if !src.seq.ok {
			return
		}
		for _, r := range ScanRisks(d.Name, d.Sequence, d.TCPFlags) {
			warn(r, src.seq.expr, "")
		}
	case KindOneTime:
		// One warning per kind of risk, for the first line that has it.
		lines := map[string][]int{}
		first := map[string]ScanRisk{}
		var order []string
		for _, o := range d.OneTime {
			for _, r := range ScanRisks(d.Name, o.Steps, d.TCPFlags) {
				if _, seen := first[r.Summary]; !seen {
					first[r.Summary] = r
					order = append(order, r.Summary)
				}
				lines[r.Summary] = append(lines[r.Summary], o.Line)
			}
		}
		for _, k := range order {
			ls := lines[k]
			prefix := fmt.Sprintf("Line %d of %s: ", ls[0], d.OneTimeFile)
			if len(ls) > 1 {
				prefix = fmt.Sprintf("Lines %s of %s; line %d: ", fmtLines(ls), d.OneTimeFile, ls[0])
			}
			warn(first[k], rd.OneTime.Expr.Range(), prefix)
		}
	case KindTOTP:
		if d.TOTP.Proto != TCP {
			return
		}
		if r, ok := FlagsRisk(d.Name, d.TCPFlags, ""); ok {
			warn(r, rd.DefRange, "")
		}
	case KindSPA: // one packet, no sequence to scan for
	}
}

// fmtLines lists line numbers: the first five, then "..." and the count.
func fmtLines(ls []int) string {
	s := make([]string, 0, 6)
	for i, l := range ls {
		if i == 5 {
			s = append(s, fmt.Sprintf("... (%d lines)", len(ls)))
			break
		}
		s = append(s, strconv.Itoa(l))
	}
	return strings.Join(s, ", ")
}

// sequence checks a sequence's length and that no step repeats the one
// before it. never says what a repeat would break.
func (v *validator) sequence(name string, ps ports, never string) bool {
	n := len(ps.pp)
	if n == 0 {
		v.add(errorf(ps.expr, "Empty "+name, "%s needs at least one step: it is %s.", name, allowSequence))
		return false
	}
	if n > MaxSequence {
		v.add(errorf(ps.rngs[MaxSequence], "Too many steps in "+name, "%s has %d steps; at most %d are allowed.", name, n, MaxSequence))
		return false
	}
	ok := true
	for i := 1; i < n; i++ {
		if ps.pp[i] == ps.pp[i-1] {
			v.add(errorf(ps.rngs[i], "Repeated knock step", "Step %d repeats step %d (%s). A repeat of the hit just matched is ignored as a retransmit, so %s. Put another port between them.", i+1, i, ps.pp[i], never))
			ok = false
		}
	}
	return ok
}

// openList checks that open lists at least one port, each once.
func (v *validator) openList(ps ports) bool {
	if len(ps.pp) == 0 {
		v.add(errorf(ps.expr, "Empty open", "A door must open something: open is %s.", allowOpen))
		return false
	}
	ok := true
	seen := make(map[PortProto]hcl.Range)
	for i, pp := range ps.pp {
		if first, dup := seen[pp]; dup {
			v.add(errorf(ps.rngs[i], "Duplicate port in open", "%s is already listed at %s; list each port once.", pp, pos(first)))
			ok = false
			continue
		}
		seen[pp] = ps.rngs[i]
	}
	return ok
}

// tcpFlags parses the door's tcp_flags and warns when they cannot matter
// or cannot match what knock clients send.
func (v *validator) tcpFlags(rd *rawDoor, d *Door) {
	s, ok := v.str(rd.TCPFlags, allowTCPFlags)
	if !ok {
		return
	}
	rng := rd.TCPFlags.Expr.Range()
	f, err := ParseTCPFlags(s)
	if err != nil {
		v.add(errorf(rng, "Invalid tcp_flags", "%s; tcp_flags is %s.", err, allowTCPFlags))
		return
	}
	d.TCPFlags = f
	if !f.Match(FlagSYN) {
		v.add(warnf(rng, "tcp_flags rejects a bare SYN", "Knock clients (sesame knock, knockd's knock) send a bare SYN, which %q does not pass: only crafted packets can knock on door %q.", s, d.Name))
	}
	if d.Sequence == nil && d.CloseSequence == nil {
		return
	}
	for _, pp := range append(append([]PortProto(nil), d.Sequence...), d.CloseSequence...) {
		if pp.Proto == TCP {
			return
		}
	}
	v.add(warnf(rng, "tcp_flags has no effect", "Every step of door %q is udp, and tcp_flags only filters tcp steps. Remove it.", d.Name))
}

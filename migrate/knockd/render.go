package knockd

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// render writes the config. Each door is validated with the doors before
// it by sesame's own parser; one that fails is emitted commented out.
func (c *converter) render(source string, globals []string, doors []*door) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# sesame config converted from %s by `sesame convert`.\n", source)
	b.WriteString("# Review it, then validate it: sesame check -c FILE\n")
	var accepted strings.Builder
	standIns := 0
	if len(globals) > 0 {
		b.WriteString("\n")
		for _, g := range globals {
			if !strings.HasPrefix(g, "#") {
				if _, diags := policy.Parse("converted.hcl", []byte(g+"\n")); diags.HasErrors() {
					c.warn(0, "%s: %s; commented out", g, firstError(diags))
					g = "# " + g
				} else {
					accepted.WriteString(g + "\n")
				}
			}
			b.WriteString(g + "\n")
		}
	}
	for _, d := range doors {
		if d.folded {
			fmt.Fprintf(&b, "\n# [%s] (line %d) is the close_sequence of door %q.\n", d.section, d.line, d.into.name)
			continue
		}
		body := d.hcl()
		if d.off == "" {
			// accepted holds the checkable form, so that a door whose
			// one-time file is missing here does not fail the next ones.
			checkable := d.checkable(body, &standIns)
			if _, diags := policy.Parse("converted.hcl", []byte(accepted.String()+checkable)); diags.HasErrors() {
				d.off = "sesame rejects it: " + firstError(diags)
				c.warn(d.line, "[%s] %s; emitted commented out", d.section, d.off)
			} else {
				accepted.WriteString(checkable)
				c.scanRisks(d)
			}
		}
		fmt.Fprintf(&b, "\n# [%s] (line %d)\n", d.section, d.line)
		for _, n := range d.notes {
			b.WriteString("# " + n + "\n")
		}
		if d.off != "" {
			fmt.Fprintf(&b, "# Not converted: %s.\n", d.off)
			for l := range strings.Lines(body) {
				b.WriteString("# " + l)
			}
			continue
		}
		b.WriteString(body)
	}
	return []byte(b.String())
}

// hcl renders the door block.
func (d *door) hcl() string {
	var b strings.Builder
	name := d.name
	fmt.Fprintf(&b, "door %s {\n", hclString(name))
	attr := func(k, v string) { fmt.Fprintf(&b, "  %-14s = %s\n", k, v) }
	if d.seq != nil {
		attr("sequence", portList(d.seq))
	}
	if d.oneTime != "" {
		attr("one_time_sequences", hclString(d.oneTime))
	}
	attr("seq_timeout", hclString(dur(d.seqTimeout)))
	if d.tcpFlags != "" {
		attr("tcp_flags", hclString(d.tcpFlags))
	}
	if d.open != nil {
		attr("open", portList(d.open))
	}
	if d.openFor != 0 {
		attr("open_for", hclString(dur(d.openFor)))
	}
	if d.closeSeq != nil {
		attr("close_sequence", portList(d.closeSeq))
	}
	if d.onOpen != nil {
		attr("on_open", strList(d.onOpen))
	}
	if d.onClose != nil {
		attr("on_close", strList(d.onClose))
	}
	b.WriteString("}\n")
	return b.String()
}

// dur writes a duration the way a person would ("5s", "1h", "1m30s").
func dur(t time.Duration) string {
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func portList(pp []policy.PortProto) string {
	s := make([]string, len(pp))
	for i, p := range pp {
		s[i] = hclString(p.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func strList(ss []string) string {
	s := make([]string, len(ss))
	for i, v := range ss {
		s[i] = hclString(v)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// hclString quotes s as an HCL string literal: escapes, and "${" / "%{"
// doubled so that they are not templates.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func firstError(d policy.Diagnostics) string {
	if errs := d.Errors(); len(errs) > 0 {
		return errs[0].Summary + ": " + strings.TrimSuffix(errs[0].Detail, ".")
	}
	return d.Error()
}

// checkable returns the door as sesame's parser can check it here: a
// one-time sequence file that exists only on the knockd host is replaced by
// standIn(n), and n counts the stand-ins used (the warning about the file
// was given).
func (d *door) checkable(body string, n *int) string {
	if d.oneTime == "" {
		return body
	}
	if _, err := os.Stat(d.oneTime); err == nil {
		return body
	}
	line := fmt.Sprintf("  %-14s = %s\n", "one_time_sequences", hclString(d.oneTime))
	*n++
	return strings.Replace(body, line, fmt.Sprintf("  %-14s = %s\n", "sequence", standIn(*n)), 1)
}

// standIn is the n-th sequence that stands in for a missing one-time file:
// one that no other door uses, and a different one for each door.
func standIn(n int) string {
	return fmt.Sprintf(`["65534/udp", "65535/udp", "%d/udp"]`, 60000+n%5000)
}

// scanRisks reports, as sesame check does (policy.ScanRisks), the ways a
// port scan that knows nothing can open the converted door, with the odds,
// at the knockd.conf line of the sequence or of TCPFlags. The sequences of
// a one-time file are checked by sesame check on the host that has it;
// here only its flags are.
func (c *converter) scanRisks(d *door) {
	flags := policy.DefaultTCPFlags
	if d.tcpFlags != "" {
		f, err := policy.ParseTCPFlags(d.tcpFlags)
		if err != nil {
			return // not reached: the door passed validation
		}
		flags = f
	}
	var risks []policy.ScanRisk
	if d.seq != nil {
		risks = policy.ScanRisks(d.name, d.seq, flags)
	} else if r, ok := policy.FlagsRisk(d.name, flags, ""); ok {
		risks = append(risks, r)
	}
	for _, r := range risks {
		line := d.seqLine
		if r.Flags && d.flagsLine > 0 {
			line = d.flagsLine
		}
		c.warn(line, "[%s] %s: %s", d.section, strings.ToLower(r.Summary[:1])+r.Summary[1:], r.Detail)
	}
}

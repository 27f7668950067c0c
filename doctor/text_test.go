package doctor

import (
	"strconv"
	"strings"
	"testing"
)

// parseNft reads the subset of nft text that the fixtures use (what `nft
// list ruleset` prints) into a Ruleset: tables, chains with their type,
// hook, priority and policy, and rules. Handles count from 1 per table in
// the order of the text, as the kernel numbers a freshly loaded table's
// objects only roughly alike: tests compare findings by chain, not handle.
func parseNft(t *testing.T, text string) Ruleset {
	t.Helper()
	var rs Ruleset
	var tb *Table
	var ch *Chain
	var handle uint64
	depth := 0 // inside a set or map block
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(line)
		switch {
		case line == "":
		case depth > 0:
			depth += strings.Count(line, "{") - strings.Count(line, "}")
		case f[0] == "table":
			rs.Tables = append(rs.Tables, Table{Family: f[1], Name: f[2]})
			tb, handle = &rs.Tables[len(rs.Tables)-1], 0
		case f[0] == "set" || f[0] == "map" || f[0] == "flowtable":
			depth = strings.Count(line, "{") - strings.Count(line, "}")
		case f[0] == "chain":
			tb.Chains = append(tb.Chains, Chain{Name: f[1], Policy: Accept})
			ch = &tb.Chains[len(tb.Chains)-1]
		case f[0] == "}":
			if ch != nil {
				ch = nil
			} else {
				tb = nil
			}
		case f[0] == "type":
			ch.Type, ch.Hook = f[1], f[3]
			for _, part := range strings.Split(line, ";") {
				p := strings.Fields(part)
				if len(p) == 0 {
					continue
				}
				switch p[0] {
				case "policy":
					if p[1] == "drop" {
						ch.Policy = Drop
					}
				case "type":
					ch.Priority = priority(t, p[5:])
				}
			}
		case f[0] == "comment", f[0] == "devices":
		default:
			if ch == nil {
				t.Fatalf("line %d: rule outside a chain: %q", n+1, line)
			}
			handle++
			r := parseRule(t, line)
			r.Handle = handle
			ch.Rules = append(ch.Rules, r)
		}
	}
	return rs
}

func priority(t *testing.T, p []string) int32 {
	names := map[string]int32{"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
	v, ok := names[p[0]]
	if !ok {
		n, err := strconv.Atoi(p[0])
		if err != nil {
			t.Fatalf("priority %q", p)
		}
		v = int32(n)
	}
	if len(p) == 3 {
		n, _ := strconv.Atoi(p[2])
		if p[1] == "-" {
			n = -n
		}
		v += int32(n)
	}
	return v
}

var services = map[string]uint16{"ssh": 22, "http": 80, "https": 443, "domain": 53, "bootpc": 68, "bootps": 67, "dhcpv6-client": 546}

// tokens splits a rule into words, keeping quoted strings and { ... }
// together.
func tokens(line string) []string {
	var out []string
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ':
			i++
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"') + i + 2
			out = append(out, line[i:j])
			i = j
		case c == '{':
			j := strings.IndexByte(line[i:], '}') + i + 1
			out = append(out, line[i:j])
			i = j
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			out = append(out, line[i:i+j])
			i += j
		}
	}
	return out
}

func list(tok string) []string {
	tok = strings.Trim(tok, "{} ")
	var out []string
	for _, s := range strings.Split(tok, ",") {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

func parseRule(t *testing.T, line string) Rule {
	r := Rule{Text: line}
	tk := tokens(line)
	var other []string
	proto := func(s string) {
		for _, p := range list(s) {
			switch p {
			case "tcp":
				r.Protos = append(r.Protos, 6)
			case "udp":
				r.Protos = append(r.Protos, 17)
			case "icmp":
				r.Protos = append(r.Protos, 1)
			case "ipv6-icmp", "icmpv6":
				r.Protos = append(r.Protos, 58)
			default:
				t.Fatalf("protocol %q in %q", p, line)
			}
		}
	}
	for i := 0; i < len(tk); i++ {
		w := tk[i]
		next := func() string { i++; return tk[i] }
		switch {
		case (w == "tcp" || w == "udp" || w == "th") && i+1 < len(tk) && (tk[i+1] == "dport" || tk[i+1] == "sport"):
			if w != "th" {
				proto(w)
			}
			if next() == "sport" {
				other = append(other, w+" sport "+next())
				continue
			}
			v := next()
			if v == "!=" || strings.HasPrefix(v, "@") {
				other = append(other, w+" dport "+v)
				continue
			}
			for _, p := range list(v) {
				lo, hi, _ := strings.Cut(p, "-")
				if hi == "" {
					hi = lo
				}
				r.Ports = append(r.Ports, PortRange{port(t, lo), port(t, hi)})
			}
		case (w == "icmp" || w == "icmpv6") && i+1 < len(tk) && tk[i+1] == "type":
			proto(w)
			i += 2
		case (w == "meta" && tk[i+1] == "l4proto" || w == "ip" && tk[i+1] == "protocol" || w == "ip6" && tk[i+1] == "nexthdr") && tk[i+2] != ".":
			i++
			proto(next())
		case w == "iif" || w == "iifname":
			c := Cond{Kind: CondIif}
			v := next()
			if v == "!=" {
				c.Negate, v = true, next()
			}
			c.Value = strings.Trim(v, `"`)
			r.Conds = append(r.Conds, c)
		case w == "ct" && tk[i+1] == "state":
			i++
			c := Cond{Kind: CondCtState}
			v := next()
			if v == "!=" {
				c.Negate, v = true, next()
			}
			for _, s := range list(strings.ReplaceAll(v, ",", ", ")) {
				c.States |= map[string]uint32{"invalid": CtInvalid, "established": CtEstablished, "related": CtRelated, "new": CtNew, "untracked": CtUntracked}[s]
			}
			r.Conds = append(r.Conds, c)
		case w == "ct" && tk[i+1] == "status" && tk[i+2] == "dnat":
			i += 2
			r.Conds = append(r.Conds, Cond{Kind: CondCtDNAT})
		case w == "ct" && tk[i+1] == "original" && tk[i+2] == "proto-dst":
			i += 2
			c := Cond{Kind: CondOrigDport}
			v := next()
			if v == "!=" {
				c.Negate, v = true, next()
			}
			c.Port = port(t, v)
			r.Conds = append(r.Conds, c)
		case w == "fib" && tk[i+1] == "daddr" && tk[i+2] == "type":
			i += 2
			c := Cond{Kind: CondFibType}
			v := next()
			if v == "!=" {
				c.Negate, v = true, next()
			}
			c.Value = v
			r.Conds = append(r.Conds, c)
		case w == "counter":
			for i+2 < len(tk) && (tk[i+1] == "packets" || tk[i+1] == "bytes") {
				i += 2
			}
		case w == "log":
			for i+2 < len(tk) && (tk[i+1] == "prefix" || tk[i+1] == "level" || tk[i+1] == "flags" || tk[i+1] == "group") {
				i += 2
			}
		case w == "comment":
			i++
		case w == "accept":
			r.Action = Accept
		case w == "drop":
			r.Action = Drop
		case w == "return":
			r.Action = Return
		case w == "notrack":
			r.Action = Notrack
		case w == "reject":
			r.Action = Reject
			i = len(tk)
		case w == "jump" || w == "goto":
			r.Action = map[string]Action{"jump": Jump, "goto": Goto}[w]
			r.Target = next()
		case w == "dnat" || w == "redirect":
			r.Action = map[string]Action{"dnat": DNAT, "redirect": Redirect}[w]
			i = len(tk)
		case w == "masquerade" || w == "snat":
			i = len(tk) // postrouting only: no verdict the doctor reads
		default:
			other = append(other, w)
		}
	}
	if len(other) > 0 {
		r.Conds = append(r.Conds, Cond{Kind: CondOther, Value: strings.Join(other, " ")})
	}
	return r
}

func port(t *testing.T, s string) uint16 {
	if p, ok := services[s]; ok {
		return p
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		t.Fatalf("port %q", s)
	}
	return uint16(n)
}

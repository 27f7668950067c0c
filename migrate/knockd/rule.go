package knockd

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/sesame-knock/sesame/policy"
)

// splitCommand splits a knockd command (run by knockd through /bin/sh) into
// its simple commands, joined by ";" or "&&", each split into words with
// shell quoting. It fails on shell syntax that an argv list cannot express
// (pipes, redirections, expansions, "||", background jobs).
func splitCommand(s string) ([][]string, error) {
	var (
		cmds  [][]string
		words []string
		w     strings.Builder
		inW   bool
	)
	endWord := func() {
		if inW {
			words = append(words, w.String())
			w.Reset()
			inW = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			inW = true
			i += j + 1
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '$' || s[j] == '`' {
					return nil, fmt.Errorf("shell expansion %q inside quotes", s[j])
				}
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				w.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated \" quote")
			}
			inW = true
			i = j
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inW = true
		case c == ' ' || c == '\t':
			endWord()
		case c == ';':
			endCmd()
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			endCmd()
			i++
		case strings.IndexByte("|&<>$`()*?", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q", c)
		default:
			w.WriteByte(c)
			inW = true
		}
	}
	endCmd()
	return cmds, nil
}

// op is what a firewall command does to its rule.
type op uint8

const (
	opAdd op = iota + 1
	opDel
)

// fwRule is a firewall command that accepts the knocker's address on some
// ports: an iptables/ip6tables -A/-I/-D or an nft add/insert/delete rule.
type fwRule struct {
	Op    op
	Key   string // the rule's identity: tool, table, chain, protocol, ports
	Ports []policy.PortProto
}

// parseFirewall recognises argv as a firewall edit that accepts %IP% on
// given ports. ok is false for anything else.
func parseFirewall(argv []string) (fwRule, bool) {
	if len(argv) == 0 {
		return fwRule{}, false
	}
	switch tool := path.Base(argv[0]); tool {
	case "iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy", "iptables-nft", "ip6tables-nft":
		fam := "4"
		if strings.HasPrefix(tool, "ip6") {
			fam = "6"
		}
		return parseIptables(fam, argv[1:])
	case "nft":
		args := argv[1:]
		if len(args) == 1 { // nft 'add rule inet filter input ...'
			args = strings.Fields(args[0])
		}
		return parseNft(args)
	}
	return fwRule{}, false
}

func parseIptables(fam string, args []string) (fwRule, bool) {
	var (
		r                    fwRule
		chain, proto, target string
		ports                []uint16
		src                  bool
		table                = "filter"
	)
	next := func(i *int) (string, bool) {
		if *i+1 >= len(args) {
			return "", false
		}
		*i++
		return args[*i], true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var ok bool
		switch a {
		case "-w", "--wait":
			if i+1 < len(args) && isNumber(args[i+1]) {
				i++
			}
			ok = true
		case "-t", "--table":
			table, ok = next(&i)
		case "-A", "--append", "-I", "--insert", "-D", "--delete":
			if r.Op != 0 {
				return fwRule{}, false
			}
			r.Op = opAdd
			if a == "-D" || a == "--delete" {
				r.Op = opDel
			}
			chain, ok = next(&i)
			if ok && (a == "-I" || a == "--insert") && i+1 < len(args) && isNumber(args[i+1]) {
				i++ // rule position
			}
		case "-s", "--source", "--src":
			var v string
			v, ok = next(&i)
			src = ok && (v == "%IP%" || v == "%IP%/32" || v == "%IP%/128")
			ok = src
		case "-p", "--protocol":
			proto, ok = next(&i)
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			var v string
			if v, ok = next(&i); ok {
				for p := range strings.SplitSeq(v, ",") {
					n, err := strconv.ParseUint(p, 10, 16)
					if err != nil || n == 0 {
						return fwRule{}, false // ranges ("1000:2000") have no sesame equivalent
					}
					ports = append(ports, uint16(n))
				}
			}
		case "-m", "--match", "--state", "--ctstate", "--comment", "-i", "--in-interface":
			_, ok = next(&i) // modules, NEW state, comments, input interface: no effect on what opens
		case "--syn":
			ok = true
		case "-j", "--jump":
			target, ok = next(&i)
		}
		if !ok {
			return fwRule{}, false
		}
	}
	if r.Op == 0 || !src || len(ports) == 0 || target != "ACCEPT" || table != "filter" {
		return fwRule{}, false
	}
	return finish(r, "ip"+fam+"tables "+chain, proto, ports)
}

func parseNft(args []string) (fwRule, bool) {
	var r fwRule
	if len(args) < 4 || args[1] != "rule" {
		return fwRule{}, false
	}
	switch args[0] {
	case "add", "insert":
		r.Op = opAdd
	case "delete":
		r.Op = opDel
	default:
		return fwRule{}, false
	}
	args = args[2:]
	family := "ip"
	if slices.Contains([]string{"ip", "ip6", "inet"}, args[0]) {
		family, args = args[0], args[1:]
	}
	if len(args) < 3 {
		return fwRule{}, false
	}
	where := "nft " + family + " " + args[0] + " " + args[1]
	var (
		proto          string
		ports          []uint16
		src, accept    bool
		inSet, inPorts bool
	)
	for i := 2; i < len(args); i++ {
		a := strings.TrimSuffix(args[i], ",")
		switch {
		case inSet:
			if a == "}" {
				inSet = false
				continue
			}
			for p := range strings.SplitSeq(strings.Trim(a, "{}"), ",") {
				if p == "" {
					continue
				}
				n, err := strconv.ParseUint(p, 10, 16)
				if err != nil || n == 0 {
					return fwRule{}, false
				}
				ports = append(ports, uint16(n))
			}
			if strings.HasSuffix(a, "}") {
				inSet = false
			}
		case inPorts:
			inPorts = false
			if strings.HasPrefix(a, "{") {
				inSet = true
				i-- // reread this token inside the set
				continue
			}
			n, err := strconv.ParseUint(a, 10, 16)
			if err != nil || n == 0 {
				return fwRule{}, false
			}
			ports = append(ports, uint16(n))
		case (a == "ip" || a == "ip6") && i+2 < len(args) && args[i+1] == "saddr":
			src = args[i+2] == "%IP%"
			i += 2
		case (a == "tcp" || a == "udp") && i+1 < len(args) && args[i+1] == "dport":
			proto, inPorts = a, true
			i++
		case a == "ct" && i+2 < len(args) && args[i+1] == "state":
			i += 2
		case a == "counter":
		case a == "accept":
			accept = true
		default:
			return fwRule{}, false
		}
	}
	if !src || !accept || len(ports) == 0 {
		return fwRule{}, false
	}
	return finish(r, where, proto, ports)
}

// finish fills in the ports and the rule's identity.
func finish(r fwRule, where, proto string, ports []uint16) (fwRule, bool) {
	pr := policy.TCP // iptables --dport without -p: knockd's man page writes it so
	if proto != "" {
		var err error
		if pr, err = policy.ParseProto(proto); err != nil {
			return fwRule{}, false
		}
	}
	for _, p := range ports {
		r.Ports = append(r.Ports, policy.PortProto{Port: p, Proto: pr})
	}
	slices.SortFunc(r.Ports, policy.PortProto.Compare)
	r.Ports = slices.Compact(r.Ports)
	r.Key = where + " " + policy.FormatPorts(r.Ports)
	return r, true
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

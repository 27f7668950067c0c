package knockd

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/migrate"
	"github.com/sesame-knock/sesame/policy"
)

// knockd's defaults, applied where knockd.conf is silent.
const (
	knockdSeqTimeout = 25 * time.Second // knockd's SEQ_TIMEOUT
	knockdCmdTimeout = 10 * time.Second // knockd's CMD_TIMEOUT
	// unboundedOpenFor is what an open door without a stop_command or a
	// close door gets: knockd left its rule until something removed it;
	// sesame's grants always expire.
	unboundedOpenFor = time.Hour
)

// command is one command directive, split and classified.
type command struct {
	line  int
	key   string
	raw   string
	rules []fwRule   // firewall edits that accept %IP%
	hooks [][]string // other commands, as argv with sesame placeholders
	bad   []string   // why a part cannot be mapped
}

// door is one knockd section on its way to a sesame door.
type door struct {
	name, section string
	line          int
	seq           []policy.PortProto
	seqLine       int // the Sequence (or One_Time_Sequences) line
	oneTime       string
	seqTimeout    time.Duration
	tcpFlags      string
	flagsLine     int // the TCPFlags line; 0 when absent
	start, start6 *command
	stop, stop6   *command
	cmdTimeout    time.Duration
	hasCmdTimeout bool

	open          []policy.PortProto
	openFor       time.Duration
	closeSeq      []policy.PortProto
	onOpen        []string
	onClose       []string
	notes         []string // comments above the door
	off           string   // non-empty: the door is emitted commented out, for this reason
	folded        bool     // a close door merged into another
	into          *door    // the door it was merged into
	addKeys, dels []string
}

type converter struct {
	warns []migrate.Warning
}

func (c *converter) warn(line int, format string, args ...any) {
	c.warns = append(c.warns, migrate.Warning{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Convert maps a parsed knockd.conf to a sesame config. source names the
// file in the header comment. Every door in the output passes sesame's
// validation; a door that would not is emitted commented out, with a
// warning.
func Convert(f *File, source string) migrate.Result {
	c := &converter{}
	var (
		globals []string // HCL lines and comments for the top level
		doors   []*door
	)
	for i := range f.Sections {
		s := &f.Sections[i]
		if s.Line == 0 {
			for _, e := range s.Entries {
				c.warn(e.Line, "%q is outside any [section]: knockd ignores it; not converted", e.Key)
			}
			continue
		}
		if strings.EqualFold(s.Name, "options") {
			globals = append(globals, c.options(s)...)
			continue
		}
		doors = append(doors, c.door(s))
	}
	c.fold(doors)
	names := map[string]int{}
	for _, d := range doors {
		d.name = uniqueName(d.section, names)
	}
	out := c.render(source, globals, doors)
	slices.SortStableFunc(c.warns, func(a, b migrate.Warning) int { return a.Line - b.Line })
	return migrate.Result{HCL: out, Warnings: c.warns}
}

// options maps the [options] section to top-level HCL and comments.
func (c *converter) options(s *Section) []string {
	var out []string
	for _, e := range s.Entries {
		switch e.Key {
		case "USESYSLOG":
			out = append(out, fmt.Sprintf("# UseSyslog (line %d): sesame logs one line per event to stderr; under systemd they go to the journal (and on to syslog if journald forwards).", e.Line))
		case "LOGFILE":
			out = append(out, fmt.Sprintf("# LogFile = %s (line %d): not converted; sesame logs to stderr (the journal under systemd).", e.Value, e.Line))
			c.warn(e.Line, "LogFile has no sesame equivalent: sesame logs to stderr (the journal under systemd); redirect it if you need a file")
		case "PIDFILE":
			out = append(out, fmt.Sprintf("# PidFile = %s (line %d): not converted; sesame runs in the foreground under systemd and writes no pid file.", e.Value, e.Line))
			c.warn(e.Line, "PidFile has no sesame equivalent: sesame runs in the foreground under systemd")
		case "INTERFACE":
			if e.Value == "" {
				c.warn(e.Line, "Interface has no value; not converted")
				continue
			}
			out = append(out, fmt.Sprintf("# Interface (line %d)", e.Line), "interfaces = ["+hclString(e.Value)+"]")
		default:
			out = append(out, fmt.Sprintf("# %s = %s (line %d): unknown to knockd 0.8; not converted", e.Key, e.Value, e.Line))
			c.warn(e.Line, "unknown option %q in [options]; not converted", e.Key)
		}
	}
	return out
}

// door reads one door section.
func (c *converter) door(s *Section) *door {
	d := &door{section: s.Name, line: s.Line, seqTimeout: knockdSeqTimeout, cmdTimeout: knockdCmdTimeout}
	for _, e := range s.Entries {
		switch e.Key {
		case "SEQUENCE":
			seq, err := parseSequence(e.Value)
			if err != nil {
				c.warn(e.Line, "[%s] sequence: %v", s.Name, err)
				d.off = "its sequence cannot be read"
				continue
			}
			d.seq, d.seqLine = seq, e.Line
		case "ONE_TIME_SEQUENCES":
			d.oneTime, d.seqLine = e.Value, e.Line
		case "SEQ_TIMEOUT", "TIMEOUT":
			d.seqTimeout = c.seconds(e, s.Name)
		case "TCPFLAGS":
			flags := strings.ReplaceAll(e.Value, "|", ",")
			f, err := policy.ParseTCPFlags(flags)
			if err != nil {
				c.warn(e.Line, "[%s] tcpflags: %v; not converted", s.Name, err)
				continue
			}
			d.tcpFlags, d.flagsLine = f.String(), e.Line
		case "START_COMMAND", "COMMAND":
			d.start = c.command(e)
		case "START_COMMAND_6", "COMMAND_6":
			d.start6 = c.command(e)
		case "STOP_COMMAND":
			d.stop = c.command(e)
		case "STOP_COMMAND_6":
			d.stop6 = c.command(e)
		case "CMD_TIMEOUT":
			d.cmdTimeout, d.hasCmdTimeout = c.seconds(e, s.Name), true
		case "TARGET":
			d.notes = append(d.notes, fmt.Sprintf("target = %s (line %d): not converted; sesame counts knocks to any of this host's own addresses.", e.Value, e.Line))
			c.warn(e.Line, "[%s] Target has no sesame equivalent: sesame counts only knocks addressed to this host's own addresses", s.Name)
		default:
			d.notes = append(d.notes, fmt.Sprintf("%s = %s (line %d): unknown to knockd 0.8; not converted.", e.Key, e.Value, e.Line))
			c.warn(e.Line, "[%s] unknown directive %q; not converted", s.Name, e.Key)
		}
	}
	if d.seqTimeout < policy.MinSeqTimeout || d.seqTimeout > policy.MaxSeqTimeout {
		e, _ := s.Get("SEQ_TIMEOUT", "TIMEOUT")
		t := min(max(d.seqTimeout, time.Second), policy.MaxSeqTimeout)
		c.warn(e.Line, "[%s] seq_timeout %s is outside sesame's bounds (%s..%s); using %s", s.Name, d.seqTimeout, policy.MinSeqTimeout, policy.MaxSeqTimeout, t)
		d.seqTimeout = t
	}
	if d.oneTime != "" {
		e, _ := s.Get("ONE_TIME_SEQUENCES")
		d.notes = append(d.notes, fmt.Sprintf("one_time_sequences (line %d): sesame reads knockd's file format (lines knockd commented out stay used) and records each sequence once used in state_dir; it never writes the file.", e.Line))
		if d.seq != nil {
			c.warn(e.Line, "[%s] both Sequence and One_Time_Sequences: knockd uses the one-time sequences; so does the converted door", s.Name)
			d.seq = nil
		}
		if _, err := os.Stat(d.oneTime); err != nil {
			c.warn(e.Line, "[%s] One_Time_Sequences file %s: %v: sesame check and sesame run need it", s.Name, d.oneTime, err)
		}
	} else if d.seq == nil && d.off == "" {
		c.warn(s.Line, "[%s] has no sequence", s.Name)
		d.off = "it has no sequence"
	}
	return d
}

// seconds reads a knockd timeout: whole seconds.
func (c *converter) seconds(e Entry, section string) time.Duration {
	n, err := strconv.Atoi(e.Value)
	if err != nil || n < 0 {
		c.warn(e.Line, "[%s] %s = %q is not a number of seconds; using knockd's default", section, strings.ToLower(e.Key), e.Value)
		if e.Key == "CMD_TIMEOUT" {
			return knockdCmdTimeout
		}
		return knockdSeqTimeout
	}
	return time.Duration(n) * time.Second
}

// command splits and classifies one command directive.
func (c *converter) command(e Entry) *command {
	cmd := &command{line: e.Line, key: strings.ToLower(e.Key), raw: e.Value}
	if e.Value == "" {
		return cmd
	}
	parts, err := splitCommand(e.Value)
	if err != nil {
		cmd.bad = append(cmd.bad, fmt.Sprintf("%v (sesame runs hooks without a shell)", err))
		return cmd
	}
	for _, argv := range parts {
		if r, ok := parseFirewall(argv); ok {
			cmd.rules = append(cmd.rules, r)
			continue
		}
		if isFirewallTool(argv[0]) {
			cmd.bad = append(cmd.bad, fmt.Sprintf("%q is a firewall command that does not accept %%IP%% on given ports (sesame grants address . proto . port)", strings.Join(argv, " ")))
			continue
		}
		if !path.IsAbs(argv[0]) {
			cmd.bad = append(cmd.bad, fmt.Sprintf("%q is not an absolute path (a hook's program must be)", argv[0]))
			continue
		}
		hook := make([]string, len(argv))
		for i, a := range argv {
			hook[i] = strings.ReplaceAll(a, "%IP%", "{ip}")
		}
		cmd.hooks = append(cmd.hooks, hook)
	}
	return cmd
}

func isFirewallTool(argv0 string) bool {
	switch path.Base(argv0) {
	case "iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy", "iptables-nft", "ip6tables-nft", "nft", "ufw", "firewall-cmd":
		return true
	}
	return false
}

// parseSequence reads "7000,8000:udp,9000:tcp".
func parseSequence(v string) ([]policy.PortProto, error) {
	var seq []policy.PortProto
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		port, proto, _ := strings.Cut(item, ":")
		n, err := strconv.ParseUint(strings.TrimSpace(port), 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a port (1-65535)", item)
		}
		pp := policy.PortProto{Port: uint16(n), Proto: policy.TCP}
		if proto != "" {
			if pp.Proto, err = policy.ParseProto(strings.TrimSpace(proto)); err != nil {
				return nil, err
			}
		}
		seq = append(seq, pp)
	}
	if len(seq) > policy.MaxSequence {
		return nil, fmt.Errorf("%d steps; knockd and sesame allow at most %d", len(seq), policy.MaxSequence)
	}
	return seq, nil
}

// uniqueName turns a knockd section name into a sesame door name, unique
// in the file.
func uniqueName(section string, seen map[string]int) string {
	var b strings.Builder
	for _, r := range section {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 60 {
		name = name[:60]
	}
	if name == "" {
		name = "door"
	}
	seen[name]++
	if n := seen[name]; n > 1 {
		name += "-" + strconv.Itoa(n)
	}
	return name
}

func keys(rules []fwRule, o op) []string {
	var out []string
	for _, r := range rules {
		if r.Op == o {
			out = append(out, r.Key)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package knockd

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// fold maps each door's commands to open, open_for and hooks, and merges
// an "open" door with the "close" door that deletes the rule it adds:
//
//	[open]  command = iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
//	[close] command = iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
//
// becomes one door with sequence, close_sequence and open. A start_command
// with a stop_command that deletes its rule after cmd_timeout becomes open
// with open_for.
func (c *converter) fold(doors []*door) {
	for _, d := range doors {
		c.commands(d)
	}
	for _, o := range doors {
		if o.off != "" || len(o.addKeys) == 0 || o.openFor != 0 {
			continue
		}
		for _, cl := range doors {
			if cl == o || cl.off != "" || cl.folded || len(cl.addKeys) != 0 || !slices.Equal(cl.dels, o.addKeys) {
				continue
			}
			cl.folded, cl.into = true, o
			o.closeSeq = cl.seq
			o.notes = append(o.notes, fmt.Sprintf("[%s] (line %d) deletes the rule this door adds: it is this door's close_sequence.", cl.section, cl.line))
			if cl.seqTimeout != o.seqTimeout || cl.tcpFlags != o.tcpFlags {
				o.notes = append(o.notes, fmt.Sprintf("[%s] had its own seq_timeout/tcpflags; sesame uses this door's for both sequences.", cl.section))
			}
			if cl.start != nil && len(cl.start.hooks) > 0 {
				o.onClose = cl.start.hooks[0]
				c.extraHooks(cl.start, cl.section)
			}
			break
		}
		if o.closeSeq == nil {
			o.notes = append(o.notes, fmt.Sprintf("knockd kept the rule until something deleted it; sesame grants always expire: open_for = %q (adjust it).", unboundedOpenFor.String()))
		}
		o.openFor = unboundedOpenFor
	}
	for _, d := range doors {
		switch {
		case d.off != "" || d.folded:
		case len(d.dels) > 0 && len(d.addKeys) == 0:
			d.off = "it only deletes a firewall rule that no door adds"
			c.warn(d.line, "[%s] deletes a firewall rule that no door adds; not converted", d.section)
		case len(d.open) == 0:
			d.off = "it opens no port (a sesame door grants ports; hooks alone are not a door)"
			c.warn(d.line, "[%s] opens no port that sesame can grant; emitted commented out", d.section)
		}
	}
}

// commands maps one door's start/stop commands.
func (c *converter) commands(d *door) {
	if d.start == nil {
		d.notes = append(d.notes, "knockd ran no command for this door.")
		return
	}
	d.addKeys = keys(d.start.rules, opAdd)
	d.dels = keys(d.start.rules, opDel)
	d.open = ports(d.start.rules, opAdd)
	c.unmapped(d.start, d.section)
	if len(d.start.hooks) > 0 {
		d.onOpen = d.start.hooks[0]
		c.extraHooks(d.start, d.section)
	}
	if s6 := d.start6; s6 != nil {
		switch {
		case s6.raw == "":
			c.warn(s6.line, "[%s] %s is empty: knockd did nothing for IPv6 knocks; sesame grants IPv6 knockers too", d.section, s6.key)
		case !slices.Equal(ports(s6.rules, opAdd), d.open) || len(s6.hooks) > 0 || len(s6.bad) > 0:
			c.warn(s6.line, "[%s] %s differs from the IPv4 command; sesame grants the same ports to IPv4 and IPv6: not converted", d.section, s6.key)
		}
	}
	if d.stop == nil {
		if d.hasCmdTimeout {
			d.notes = append(d.notes, "cmd_timeout without stop_command: knockd ignored it.")
		}
		return
	}
	c.unmapped(d.stop, d.section)
	if dels := keys(d.stop.rules, opDel); len(d.addKeys) > 0 && slices.Equal(dels, d.addKeys) {
		d.openFor = c.openFor(d)
	} else if len(d.stop.rules) > 0 {
		c.warn(d.stop.line, "[%s] stop_command does not delete the rule start_command adds; not converted", d.section)
	}
	if len(d.stop.hooks) > 0 {
		d.notes = append(d.notes, fmt.Sprintf("stop_command (line %d) ran %s after cmd_timeout: not converted; sesame's on_close runs on the close sequence, not at expiry.", d.stop.line, strings.Join(d.stop.hooks[0], " ")))
		c.warn(d.stop.line, "[%s] stop_command runs a program at expiry: sesame has no expiry hook; not converted", d.section)
	}
	if s6 := d.stop6; s6 != nil && s6.raw != "" && !slices.Equal(ports(s6.rules, opDel), d.open) {
		c.warn(s6.line, "[%s] stop_command_6 differs from stop_command; not converted", d.section)
	}
}

// openFor turns cmd_timeout into open_for within sesame's bounds.
func (c *converter) openFor(d *door) time.Duration {
	t := d.cmdTimeout
	switch {
	case t < policy.MinOpenFor:
		c.warn(d.stop.line, "[%s] cmd_timeout %s is below sesame's minimum open_for; using %s", d.section, t, policy.MinOpenFor)
		t = policy.MinOpenFor
	case t > policy.MaxOpenFor:
		c.warn(d.stop.line, "[%s] cmd_timeout %s is above sesame's maximum open_for; using %s", d.section, t, policy.MaxOpenFor)
		t = policy.MaxOpenFor
	}
	return t
}

// unmapped reports the parts of a command that map to nothing.
func (c *converter) unmapped(cmd *command, section string) {
	for _, why := range cmd.bad {
		c.warn(cmd.line, "[%s] %s: %s; not converted", section, cmd.key, why)
	}
}

// extraHooks reports hook commands beyond the first: a door has one
// on_open and one on_close.
func (c *converter) extraHooks(cmd *command, section string) {
	for _, h := range cmd.hooks[1:] {
		c.warn(cmd.line, "[%s] %s: %q: a door runs one hook per event; not converted (put both in a script)", section, cmd.key, strings.Join(h, " "))
	}
}

// ports returns the union of the ports of rules with op o.
func ports(rules []fwRule, o op) []policy.PortProto {
	var out []policy.PortProto
	for _, r := range rules {
		if r.Op == o {
			out = append(out, r.Ports...)
		}
	}
	slices.SortFunc(out, policy.PortProto.Compare)
	return slices.Compact(out)
}

package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

const allowForward = `a list of forwarded services such as ["8080/tcp", "192.0.2.10:22/tcp", "[2001:db8::10]:443/tcp"]: PORT/PROTO is a port of this host that is DNATed onward (Docker's -p), ADDR:PORT/PROTO a routed address (IPv6 in brackets); a port without "/udp" or "/tcp" means tcp`

// Target is one forwarded service a door guards: a port of this host that
// is DNATed onward (Addr is the zero Addr; matched by conntrack's original
// destination port of a DNATed connection), or a routed backend's address
// and port (matched by conntrack's original destination address and port).
type Target struct {
	Addr netip.Addr // zero: this host's port
	PortProto
}

// Routed reports whether t names a routed address rather than a port of
// this host.
func (t Target) Routed() bool { return t.Addr.IsValid() }

// Equal reports whether t and o are the same target (for go-cmp, which
// cannot look into netip.Addr).
func (t Target) Equal(o Target) bool { return t == o }

// String returns the config form: "8080/tcp", "192.0.2.10:22/tcp",
// "[2001:db8::10]:443/tcp".
func (t Target) String() string {
	switch {
	case !t.Routed():
		return t.PortProto.String()
	case t.Addr.Is4():
		return fmt.Sprintf("%s:%s", t.Addr, t.PortProto)
	}
	return fmt.Sprintf("[%s]:%s", t.Addr, t.PortProto)
}

// ParseTarget parses a forward target in config form.
func ParseTarget(s string) (Target, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		pp, err := ParsePortProto(s)
		return Target{PortProto: pp}, err
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
		return Target{}, fmt.Errorf("%q: an IPv6 address goes in brackets: [ADDR]:PORT/PROTO", s)
	}
	bracketed := strings.HasPrefix(host, "[")
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return Target{}, fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	if a.Is6() && !a.Is4In6() && !bracketed {
		return Target{}, fmt.Errorf("%q: an IPv6 address goes in brackets: [ADDR]:PORT/PROTO", s)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return Target{}, fmt.Errorf("%q: %s is not a unicast address a host forwards to", s, a)
	}
	pp, err := ParsePortProto(port)
	if err != nil {
		return Target{}, fmt.Errorf("%q: %w", s, err)
	}
	return Target{Addr: a, PortProto: pp}, nil
}

// FormatTargets joins targets in config form: "8080/tcp,192.0.2.10:22/tcp".
func FormatTargets(ts []Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}

// Forwards reports whether some door guards a forwarded service: the table
// then has a forward chain.
func (p *Policy) Forwards() bool {
	for i := range p.Doors {
		if len(p.Doors[i].Forward) > 0 {
			return true
		}
	}
	return false
}

// forwardList validates a door's forward attribute: at least one target,
// each once. An `open` port equal to a forward target's port is fine: one
// is this host's input path, the other its forward path.
func (v *validator) forwardList(attr *hcl.Attribute) ([]Target, bool) {
	items, ok := v.list(attr, allowForward)
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		v.add(errorf(attr.Expr.Range(), "Empty forward", "forward needs at least one target (or leave it out): it is %s.", allowForward))
		return nil, false
	}
	out := make([]Target, 0, len(items))
	seen := map[Target]hcl.Range{}
	for _, it := range items {
		var t Target
		var err error
		switch {
		case it.val.IsNull():
			err = fmt.Errorf("a target may not be null")
		case it.val.Type() == cty.Number:
			pp, good := v.port(attr.Name, it)
			if !good {
				ok = false
				continue
			}
			t = Target{PortProto: pp}
		case it.val.Type() == cty.String:
			t, err = ParseTarget(it.val.AsString())
		default:
			err = fmt.Errorf("a target must be a string, not a %s", typeName(it.val.Type()))
		}
		if err != nil {
			v.add(errorf(it.rng, "Invalid target in forward", "%s: forward is %s.", err, allowForward))
			ok = false
			continue
		}
		if first, dup := seen[t]; dup {
			v.add(errorf(it.rng, "Duplicate target in forward", "%s is already listed at %s; list each target once.", t, pos(first)))
			ok = false
			continue
		}
		seen[t] = it.rng
		out = append(out, t)
	}
	return out, ok
}

// opens says what a grant of the door opens, as the summary line writes it:
// "opens 22/tcp", "forwards 8080/tcp,192.0.2.10:22/tcp" or "opens 22/tcp
// and forwards 8080/tcp". upTo goes before the open ports (SPA requests a
// subset of them; the forward targets are always granted whole).
func (d *Door) opens(upTo string) string {
	var parts []string
	if len(d.Open) > 0 {
		parts = append(parts, "opens "+upTo+FormatPorts(d.Open))
	}
	if len(d.Forward) > 0 {
		parts = append(parts, "forwards "+FormatTargets(d.Forward))
	}
	return strings.Join(parts, " and ")
}

package policy

import (
	"path"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Hook bounds and placeholders. A hook is an argv list run without a shell
// after a grant is applied (on_open) or revoked by a close sequence
// (on_close).
const (
	DefaultHookTimeout = 10 * time.Second
	MinHookTimeout     = 100 * time.Millisecond
	MaxHookTimeout     = time.Minute
	MaxHookArgs        = 64
)

// HookPlaceholders are the names a hook argument may contain in braces:
// {ip} the knocker's address, {door} the door's name, {ports} the opened
// ports in config form ("22/tcp,443/tcp").
var HookPlaceholders = []string{"ip", "door", "ports"}

const allowHook = `a list of strings, the program's absolute path then its arguments, run without a shell, e.g. ["/usr/bin/logger", "sesame: {door} opened for {ip}"]; arguments may use the placeholders {ip}, {door} and {ports}`

// ExpandHook returns argv with its placeholders replaced.
func ExpandHook(argv []string, ip, door, ports string) []string {
	r := strings.NewReplacer("{ip}", ip, "{door}", door, "{ports}", ports)
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Replace(a)
	}
	return out
}

// hooks validates on_open, on_close and hook_timeout into d.
func (v *validator) hooks(rd *rawDoor, d *Door) {
	d.HookTimeout = DefaultHookTimeout
	if rd.OnOpen != nil {
		d.OnOpen = v.hook(rd.OnOpen)
	}
	if rd.OnClose != nil {
		d.OnClose = v.hook(rd.OnClose)
		if rd.CloseSequence == nil {
			v.add(warnf(rd.OnClose.Expr.Range(), "on_close never runs", "Door %q has no close_sequence: on_close runs when a close sequence revokes a grant (not when the kernel expires it).", rd.Name))
		}
	}
	if t, ok := v.duration(rd.HookTimeout, DefaultHookTimeout, MinHookTimeout, MaxHookTimeout); ok {
		d.HookTimeout = t
	}
}

// hook validates one argv list; nil when invalid.
func (v *validator) hook(attr *hcl.Attribute) []string {
	items, ok := v.list(attr, allowHook)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		v.add(errorf(attr.Expr.Range(), "Empty "+attr.Name, "%s needs at least the program to run: it is %s.", attr.Name, allowHook))
		return nil
	}
	if len(items) > MaxHookArgs {
		v.add(errorf(items[MaxHookArgs].rng, "Too many arguments in "+attr.Name, "%s has %d items; at most %d are allowed.", attr.Name, len(items), MaxHookArgs))
		return nil
	}
	argv := make([]string, 0, len(items))
	for i, it := range items {
		if it.val.IsNull() || it.val.Type() != cty.String {
			v.add(errorf(it.rng, "Invalid "+attr.Name, "Item %d is not a string: %s is %s.", i+1, attr.Name, allowHook))
			return nil
		}
		s := it.val.AsString()
		if i == 0 && (!path.IsAbs(s) || strings.ContainsAny(s, "{}")) {
			v.add(errorf(it.rng, "Hook program is not an absolute path", "%q: the program is run without a shell or PATH lookup, so it must be an absolute path such as \"/usr/bin/logger\" (no placeholders).", s))
			return nil
		}
		if bad, ok := badPlaceholder(s); !ok {
			v.add(errorf(it.rng, "Unknown placeholder in "+attr.Name, "%s is not a placeholder: the known ones are {ip}, {door} and {ports}; braces are only allowed around them.", bad))
			return nil
		}
		if strings.IndexByte(s, 0) >= 0 {
			v.add(errorf(it.rng, "Invalid "+attr.Name, "Item %d holds a NUL byte, which no program argument can.", i+1))
			return nil
		}
		argv = append(argv, s)
	}
	return argv
}

// badPlaceholder finds a brace that is not part of a known placeholder.
func badPlaceholder(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '}':
			return "a lone \"}\"", false
		case '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return "a lone \"{\"", false
			}
			name := s[i+1 : i+j]
			known := false
			for _, p := range HookPlaceholders {
				known = known || p == name
			}
			if !known {
				return "\"" + s[i:i+j+1] + "\"", false
			}
			i += j
		}
	}
	return "", true
}

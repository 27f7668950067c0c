package policy

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// What each attribute allows, said in the Detail of its errors.
const (
	allowInterfaces = `a list of network interface names, e.g. ["eth0", "wg0"]; omit it to use the interfaces that carry a default route`
	allowTable      = `a name that starts with a letter, then letters, digits, "_" or "-", at most 64 characters; the default is "sesame"`
	allowTableMode  = `"full" (the default: sesame owns the table and its input chain) or "sets" (only sesame's sets, in a table of yours)`
	allowClosed     = `"drop" (the default: silently drop) or "reject" (TCP reset / ICMP port unreachable)`
	allowSequence   = `a list of 1 to 32 ports such as ["7000/tcp", "8000/udp", 9000]; a port without "/udp" or "/tcp" means tcp`
	allowOpen       = `a list of one or more ports such as ["22/tcp", "443"]; a port without "/udp" or "/tcp" means tcp`
	allowTCPFlags   = `knockd syntax: a comma-separated list of fin, syn, rst, psh, ack, urg, each optionally negated with "!"; the default is "syn,!ack"`
	allowPort       = `a port is 1 to 65535, written "7000" or 7000 (tcp), "7000/tcp" or "7000/udp"`
)

// ParsePortProto parses a port in config form: "7000" (tcp), "7000/tcp" or
// "7000/udp". The protocol is case-insensitive.
func ParsePortProto(s string) (PortProto, error) {
	port, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		if p, q, ok := strings.Cut(s, ":"); ok {
			if _, err := ParseProto(q); err == nil {
				return PortProto{}, fmt.Errorf("%q uses the knock client's PORT:PROTO form: write %q", s, p+"/"+strings.ToLower(q))
			}
		}
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil || port[0] == '+' {
		return PortProto{}, fmt.Errorf("%q is not a port: %s", s, allowPort)
	}
	if n < 1 || n > 65535 {
		return PortProto{}, fmt.Errorf("port %d is out of range: %s", n, allowPort)
	}
	pp := PortProto{Port: uint16(n), Proto: TCP}
	if hasProto {
		if pp.Proto, err = ParseProto(proto); err != nil {
			return PortProto{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return pp, nil
}

// validator accumulates diagnostics while it turns raw values into typed
// ones.
type validator struct {
	file         string
	diags        hcl.Diagnostics
	stateDirPath string // the policy's state_dir, once validated
}

func (v *validator) add(d ...*hcl.Diagnostic) { v.diags = append(v.diags, d...) }

// value evaluates attr without variables or functions. It reports errors,
// unknown and null values and returns ok false for them.
func (v *validator) value(attr *hcl.Attribute, allowed string) (cty.Value, bool) {
	val, diags := attr.Expr.Value(nil)
	v.add(diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if val.IsNull() {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s may not be null: it is %s.", attr.Name, allowed))
		return cty.NilVal, false
	}
	return val, true
}

// str evaluates attr as a string.
func (v *validator) str(attr *hcl.Attribute, allowed string) (string, bool) {
	val, ok := v.value(attr, allowed)
	if !ok {
		return "", false
	}
	if val.Type() != cty.String {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be a string, not a %s: it is %s.", attr.Name, typeName(val.Type()), allowed))
		return "", false
	}
	return val.AsString(), true
}

// item is one element of a list attribute and where it is written.
type item struct {
	val cty.Value
	rng hcl.Range
}

// list evaluates attr as a list or tuple and pairs each element with its
// own source range (the whole expression's when the list is not written
// literally).
func (v *validator) list(attr *hcl.Attribute, allowed string) ([]item, bool) {
	val, ok := v.value(attr, allowed)
	if !ok {
		return nil, false
	}
	ty := val.Type()
	if !ty.IsListType() && !ty.IsTupleType() {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be a list, not a %s: it is %s.", attr.Name, typeName(ty), allowed))
		return nil, false
	}
	n := val.LengthInt()
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() || len(exprs) != n {
		exprs = nil
	}
	items := make([]item, 0, n)
	for it := val.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		rng := attr.Expr.Range()
		if exprs != nil {
			rng = exprs[len(items)].Range()
		}
		items = append(items, item{val: ev, rng: rng})
	}
	return items, true
}

// ports is a list of ports with the range of each element, for errors that
// point at one element.
type ports struct {
	pp   []PortProto
	rngs []hcl.Range
	expr hcl.Range // the whole list
	ok   bool      // present and every element valid
}

// portList evaluates attr as a list of port specs.
func (v *validator) portList(attr *hcl.Attribute, allowed string) ports {
	out := ports{expr: attr.Expr.Range()}
	items, ok := v.list(attr, allowed)
	if !ok {
		return out
	}
	out.ok = true
	out.pp = make([]PortProto, 0, len(items))
	for _, it := range items {
		pp, ok := v.port(attr.Name, it)
		if !ok {
			out.ok = false
			continue
		}
		out.pp = append(out.pp, pp)
		out.rngs = append(out.rngs, it.rng)
	}
	return out
}

// port converts one list element: a port spec string or a whole number.
func (v *validator) port(name string, it item) (PortProto, bool) {
	bad := func(format string, args ...any) (PortProto, bool) {
		v.add(errorf(it.rng, "Invalid port in "+name, format, args...))
		return PortProto{}, false
	}
	switch {
	case it.val.IsNull():
		return bad("A port may not be null: %s.", allowPort)
	case it.val.Type() == cty.Number:
		bf := it.val.AsBigFloat()
		if !bf.IsInt() || bf.Cmp(big.NewFloat(1)) < 0 || bf.Cmp(big.NewFloat(65535)) > 0 {
			return bad("%s is not a port: %s.", bf.Text('g', 10), allowPort)
		}
		n, _ := bf.Int64()
		return PortProto{Port: uint16(n), Proto: TCP}, true
	case it.val.Type() == cty.String:
		pp, err := ParsePortProto(it.val.AsString())
		if err != nil {
			return bad("%s.", err)
		}
		return pp, true
	}
	return bad("A port must be a string or a number, not a %s: %s.", typeName(it.val.Type()), allowPort)
}

// duration evaluates an optional duration attribute within [lo, hi].
func (v *validator) duration(attr *hcl.Attribute, def, lo, hi time.Duration) (time.Duration, bool) {
	if attr == nil {
		return def, true
	}
	allowed := fmt.Sprintf("a duration such as %q, from %s to %s; the default is %q", fmtDur(def), fmtDur(lo), fmtDur(hi), fmtDur(def))
	val, ok := v.value(attr, allowed)
	if !ok {
		return 0, false
	}
	rng := attr.Expr.Range()
	if val.Type() == cty.Number {
		n := val.AsBigFloat().Text('g', 10)
		v.add(errorf(rng, "Duration without a unit", "%s = %s has no unit: write %q. %s is %s.", attr.Name, n, n+"s", attr.Name, allowed))
		return 0, false
	}
	s, ok := v.str(attr, allowed)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			v.add(errorf(rng, "Duration without a unit", "%q has no unit: write %q. %s is %s.", s, s+"s", attr.Name, allowed))
		} else {
			v.add(errorf(rng, "Invalid "+attr.Name, "%q is not a duration: %s is %s.", s, attr.Name, allowed))
		}
		return 0, false
	}
	if d < lo || d > hi {
		v.add(errorf(rng, attr.Name+" out of range", "%s is %s, outside %s to %s: %s is %s.", attr.Name, fmtDur(d), fmtDur(lo), fmtDur(hi), attr.Name, allowed))
		return 0, false
	}
	return d, true
}

// fmtDur prints a duration without trailing zero units: "1h", "24h", "30s".
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// typeName names a cty type as a config author sees it: a tuple is a list.
func typeName(ty cty.Type) string {
	switch {
	case ty.IsTupleType() || ty.IsListType():
		return "list"
	case ty.IsObjectType() || ty.IsMapType():
		return "object"
	}
	return ty.FriendlyName()
}

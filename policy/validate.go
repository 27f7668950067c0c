package policy

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// doorSrc is a typed door with the source ranges the cross-door checks
// point at.
type doorSrc struct {
	name      string
	nameRange hcl.Range
	seq       ports
	close     ports // close.ok is false when unset or invalid
	open      ports
}

// policy validates raw into a Policy with defaults applied. start is where
// file-wide diagnostics point.
func (v *validator) policy(raw *rawConfig, start hcl.Range) *Policy {
	p := &Policy{File: v.file, Table: DefaultTable, Closed: ClosedDrop}
	if raw.Table != nil {
		if s, ok := v.str(raw.Table, allowTable); ok {
			if validTable(s) {
				p.Table = s
			} else {
				v.add(errorf(raw.Table.Expr.Range(), "Invalid table name", "%q is not a valid nftables table name: table is %s.", s, allowTable))
			}
		}
	}
	if raw.TableMode != nil {
		if s, ok := v.str(raw.TableMode, allowTableMode); ok {
			switch s {
			case "full":
			case "sets":
				p.TableMode = TableSets
				if raw.Table == nil {
					v.add(errorf(raw.TableMode.Expr.Range(), "Table mode sets needs a table", "table_mode = \"sets\" keeps sesame's sets in a table of yours: name it with table = \"...\" (family inet)."))
				}
			default:
				v.add(errorf(raw.TableMode.Expr.Range(), "Invalid table mode", "%q is not a table mode: table_mode is %s.", s, allowTableMode))
			}
		}
	}
	if raw.Closed != nil {
		if s, ok := v.str(raw.Closed, allowClosed); ok {
			switch s {
			case "drop":
				p.Closed = ClosedDrop
			case "reject":
				p.Closed = ClosedReject
			default:
				v.add(errorf(raw.Closed.Expr.Range(), "Invalid closed mode", "%q is not a closed mode: closed is %s.", s, allowClosed))
			}
		}
	}
	if raw.Interfaces != nil {
		p.Interfaces = v.interfaces(raw.Interfaces)
	}
	if raw.Metrics != nil {
		p.MetricsListen = v.metricsListen(raw.Metrics)
	}
	p.StateDir = v.stateDir(raw.StateDir)
	v.stateDirPath = p.StateDir
	p.Fleet = v.fleet(raw.Fleet)

	seen := make(map[string]hcl.Range)
	var srcs []doorSrc
	for i := range raw.Doors {
		rd := &raw.Doors[i]
		if first, dup := seen[rd.Name]; dup {
			v.add(errorf(rd.NameRange, "Duplicate door name", "A door named %q is already defined at %s; door names must be unique.", rd.Name, pos(first)))
		} else {
			seen[rd.Name] = rd.NameRange
		}
		d, src := v.door(rd)
		p.Doors = append(p.Doors, d)
		srcs = append(srcs, src)
	}
	v.crossDoors(srcs)
	v.dynamicNotGuarded(raw, p)
	v.spaCross(raw, p)
	v.fleetGroups(raw, p, len(raw.Fleet) > 0)
	if len(raw.Doors) == 0 && !v.diags.HasErrors() {
		v.add(warnf(start, "No door: nothing is guarded", `The config has no door block, so sesame guards no port and opens none. Add a door "NAME" { sequence = [...], open = [...] } block.`))
	}
	return p
}

// interfaces validates the interface list.
func (v *validator) interfaces(attr *hcl.Attribute) []string {
	items, ok := v.list(attr, allowInterfaces)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		v.add(warnf(attr.Expr.Range(), "Empty interface list", "interfaces = [] does not mean \"no interface\" nor \"all interfaces\": sesame listens on the interfaces that carry a default route. Omit the attribute to say so, or list interfaces: %s.", allowInterfaces))
		return nil
	}
	seen := make(map[string]hcl.Range)
	var out []string
	for _, it := range items {
		if it.val.IsNull() || it.val.Type() != cty.String {
			v.add(errorf(it.rng, "Invalid interface name", "An interface name must be a string; interfaces is %s.", allowInterfaces))
			continue
		}
		name := it.val.AsString()
		if why := badIfName(name); why != "" {
			v.add(errorf(it.rng, "Invalid interface name", "%q is not a Linux interface name: %s. A name has 1 to 15 bytes, without \"/\", \":\" or whitespace, and is not \".\" or \"..\".", name, why))
			continue
		}
		if first, dup := seen[name]; dup {
			v.add(errorf(it.rng, "Duplicate interface", "%q is already listed at %s; list each interface once.", name, pos(first)))
			continue
		}
		seen[name] = it.rng
		out = append(out, name)
	}
	return out
}

// badIfName says why name is not a valid Linux interface name (the
// kernel's dev_valid_name), or "" when it is valid.
func badIfName(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case len(name) > 15:
		return fmt.Sprintf("it has %d bytes", len(name))
	case name == "." || name == "..":
		return "it is reserved"
	}
	for _, c := range name {
		if c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r') || c == 0 {
			return fmt.Sprintf("it contains %q", c)
		}
	}
	return ""
}

// validTable reports whether s is a valid nftables table name as sesame
// accepts it: a letter, then letters, digits, '_' or '-', at most 64 bytes.
func validTable(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validDoorName reports whether s is 1 to 64 of [A-Za-z0-9_.-]: door names
// end up in nft element comments and logs.
func validDoorName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && !strings.ContainsRune("_.-", rune(c)) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

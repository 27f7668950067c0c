package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sesame-knock/sesame/policy"
	"github.com/zclconf/go-cty/cty"
)

// maxMembersSize bounds members.hcl: a thousand members with a few groups
// each is well under it.
const maxMembersSize = 1 << 20

// KeyPrefix starts a public key in members.hcl.
const KeyPrefix = "ed25519:"

// What each attribute allows, said in the Detail of its errors.
const (
	allowKey      = `"ed25519:" followed by the standard base64 of a 32-byte Ed25519 public key, as sesame keygen --fleet prints it`
	allowMayGrant = `a map from group to the doors this member may open there, e.g. { web = ["ssh"] }, with at least one group and one door`
)

// Member is one entry of members.hcl.
type Member struct {
	Name     string
	Key      ed25519.PublicKey
	MayGrant map[string][]string // group -> doors, each list sorted
}

// May reports whether the member may grant door in group.
func (m *Member) May(group, door string) bool {
	return slices.Contains(m.MayGrant[group], door)
}

// Members is a validated members.hcl.
type Members struct {
	byName map[string]*Member
}

// Member returns the member called name, or nil.
func (ms *Members) Member(name string) *Member {
	if ms == nil {
		return nil
	}
	return ms.byName[name]
}

// Len returns the number of members.
func (ms *Members) Len() int { return len(ms.byName) }

type rawMembers struct {
	Members []rawMember `hcl:"member,block"`
}

type rawMember struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	DefRange  hcl.Range      `hcl:",def_range"`
	Key       *hcl.Attribute `hcl:"key,optional"` // required: checked with a message
	MayGrant  *hcl.Attribute `hcl:"may_grant,optional"`
}

// LoadMembers reads and parses the members file at path.
func LoadMembers(path string) (*Members, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Cannot read members file %s", path),
			Detail:   fmt.Sprintf("Reading the fleet members failed: %v.", err),
		}}
	}
	return ParseMembers(path, src)
}

// ParseMembers parses and validates a members file, naming it filename in
// diagnostics. The result is nil if and only if the diagnostics hold an
// error; hcl.Diagnostics' Error gives "file:line,col-col: summary; detail".
func ParseMembers(filename string, src []byte) (*Members, hcl.Diagnostics) {
	if len(src) > maxMembersSize {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Members file %s is too large", filename),
			Detail:   fmt.Sprintf("The file has %d bytes; it may have at most %d.", len(src), maxMembersSize),
		}}
	}
	if d := policy.CheckNesting(filename, src); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() || f == nil {
		return nil, diags
	}
	var raw rawMembers
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, &raw)...)
	if diags.HasErrors() {
		return nil, diags
	}
	ms := &Members{byName: make(map[string]*Member, len(raw.Members))}
	first := map[string]hcl.Range{}
	for _, r := range raw.Members {
		if !policy.ValidFleetName(r.Name) {
			diags = append(diags, errorf(r.NameRange, "Invalid member name", "Member name %q: %s.", r.Name, policy.AllowFleetName))
		}
		if at, dup := first[r.Name]; dup {
			diags = append(diags, errorf(r.NameRange, "Duplicate member", "Member %q is already defined at %s:%d,%d; each name may appear once.", r.Name, at.Filename, at.Start.Line, at.Start.Column))
			continue
		}
		first[r.Name] = r.NameRange
		m := &Member{Name: r.Name}
		if r.Key == nil || r.MayGrant == nil {
			diags = append(diags, errorf(r.DefRange, "Incomplete member", "Member %q needs key (%s) and may_grant (%s).", r.Name, allowKey, allowMayGrant))
			continue
		}
		var ok bool
		if m.Key, ok = parseKeyAttr(r.Key, &diags); !ok {
			continue
		}
		if m.MayGrant, ok = parseMayGrant(r.MayGrant, &diags); !ok {
			continue
		}
		ms.byName[m.Name] = m
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return ms, diags
}

// ParseKey parses a public key in members.hcl form, "ed25519:BASE64".
func ParseKey(s string) (ed25519.PublicKey, error) {
	b64s, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("key does not start with %q", KeyPrefix)
	}
	b, err := b64(b64s)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key has %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// FormatKey returns pub in members.hcl form.
func FormatKey(pub ed25519.PublicKey) string {
	return KeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

func parseKeyAttr(a *hcl.Attribute, diags *hcl.Diagnostics) (ed25519.PublicKey, bool) {
	v, d := a.Expr.Value(nil)
	*diags = append(*diags, d...)
	if d.HasErrors() {
		return nil, false
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		*diags = append(*diags, errorf(a.Expr.Range(), "Invalid key", "The key must be a string: %s.", allowKey))
		return nil, false
	}
	k, err := ParseKey(v.AsString())
	if err != nil {
		*diags = append(*diags, errorf(a.Expr.Range(), "Invalid key", "%v: %s.", err, allowKey))
		return nil, false
	}
	return k, true
}

func parseMayGrant(a *hcl.Attribute, diags *hcl.Diagnostics) (map[string][]string, bool) {
	pairs, d := hcl.ExprMap(a.Expr)
	if d.HasErrors() {
		*diags = append(*diags, errorf(a.Expr.Range(), "Invalid may_grant", "%s.", allowMayGrant))
		return nil, false
	}
	if len(pairs) == 0 {
		*diags = append(*diags, errorf(a.Expr.Range(), "Empty may_grant", "This member may grant nothing: %s.", allowMayGrant))
		return nil, false
	}
	out := make(map[string][]string, len(pairs))
	ok := true
	for _, kv := range pairs {
		group, gok := stringOf(kv.Key)
		if !gok || !policy.ValidFleetName(group) {
			*diags = append(*diags, errorf(kv.Key.Range(), "Invalid group", "A group is %s.", policy.AllowFleetName))
			ok = false
			continue
		}
		if _, dup := out[group]; dup {
			*diags = append(*diags, errorf(kv.Key.Range(), "Duplicate group", "Group %q appears twice in may_grant.", group))
			ok = false
			continue
		}
		elems, d := hcl.ExprList(kv.Value)
		if d.HasErrors() {
			*diags = append(*diags, errorf(kv.Value.Range(), "Invalid doors", "Group %q needs a list of door names: %s.", group, allowMayGrant))
			ok = false
			continue
		}
		if len(elems) == 0 {
			*diags = append(*diags, errorf(kv.Value.Range(), "Empty door list", "Group %q lists no doors: %s.", group, allowMayGrant))
			ok = false
			continue
		}
		var doors []string
		for _, e := range elems {
			door, dok := stringOf(e)
			if !dok || door == "" {
				*diags = append(*diags, errorf(e.Range(), "Invalid door", "A door is named by a non-empty string, as in the door blocks of sesame.hcl."))
				ok = false
				continue
			}
			doors = append(doors, door)
		}
		slices.Sort(doors)
		out[group] = slices.Compact(doors)
	}
	return out, ok
}

// stringOf evaluates e as a string, or a bare word (a map key written
// without quotes).
func stringOf(e hcl.Expression) (string, bool) {
	if w := hcl.ExprAsKeyword(e); w != "" {
		return w, true
	}
	v, d := e.Value(nil)
	if d.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

func errorf(rng hcl.Range, summary, detail string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng.Ptr(),
	}
}

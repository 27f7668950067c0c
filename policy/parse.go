package policy

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// maxConfigSize bounds what Parse accepts: a config this large is a mistake
// (a wrong file), not a policy, and the bound keeps HCL's recursive
// evaluation of long operator chains far from the stack limit.
const maxConfigSize = 256 << 10

// rawConfig is the file as HCL decodes it, before validation. Attributes
// stay *hcl.Attribute so that every error can point at the exact expression,
// or at one element of a list.
type rawConfig struct {
	Interfaces *hcl.Attribute `hcl:"interfaces,optional"`
	Table      *hcl.Attribute `hcl:"table,optional"`
	TableMode  *hcl.Attribute `hcl:"table_mode,optional"`
	Closed     *hcl.Attribute `hcl:"closed,optional"`
	Metrics    *hcl.Attribute `hcl:"metrics_listen,optional"`
	StateDir   *hcl.Attribute `hcl:"state_dir,optional"`
	Doors      []rawDoor      `hcl:"door,block"`
	Fleet      []rawFleet     `hcl:"fleet,block"`
}

// rawDoor is one door block as HCL decodes it.
type rawDoor struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`

	Sequence      *hcl.Attribute `hcl:"sequence,optional"`
	SeqTimeout    *hcl.Attribute `hcl:"seq_timeout,optional"`
	TCPFlags      *hcl.Attribute `hcl:"tcp_flags,optional"`
	Open          *hcl.Attribute `hcl:"open,optional"`
	Forward       *hcl.Attribute `hcl:"forward,optional"`
	OpenFor       *hcl.Attribute `hcl:"open_for,optional"`
	CloseSequence *hcl.Attribute `hcl:"close_sequence,optional"`

	OneTime     *hcl.Attribute `hcl:"one_time_sequences,optional"`
	TOTP        []rawTOTP      `hcl:"totp,block"`
	Clients     []rawClient    `hcl:"client,block"`
	OnOpen      *hcl.Attribute `hcl:"on_open,optional"`
	OnClose     *hcl.Attribute `hcl:"on_close,optional"`
	HookTimeout *hcl.Attribute `hcl:"hook_timeout,optional"`

	SPA        []rawSPA       `hcl:"spa,block"`
	MaxOpenFor *hcl.Attribute `hcl:"max_open_for,optional"`

	MaxGrants     *hcl.Attribute `hcl:"max_grants,optional"`
	Confirm       *hcl.Attribute `hcl:"confirm,optional"`
	ConfirmWithin *hcl.Attribute `hcl:"confirm_within,optional"`

	FleetGroups *hcl.Attribute `hcl:"fleet_groups,optional"`
}

// Load reads and parses the config file at path. An unreadable file is one
// error diagnostic that names the path.
func Load(path string) (*Policy, Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{diags: hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Cannot read config file %s", path),
			Detail:   fmt.Sprintf("Reading the configuration failed: %v.", err),
		}}}
	}
	return Parse(path, src)
}

// Parse parses and validates src, naming it filename in diagnostics. The
// Policy is nil if and only if the diagnostics hold an error; warnings come
// with a usable Policy.
func Parse(filename string, src []byte) (*Policy, Diagnostics) {
	if len(src) > maxConfigSize {
		return nil, Diagnostics{diags: hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Config file %s is too large", filename),
			Detail:   fmt.Sprintf("The file has %d bytes; a sesame config may have at most %d.", len(src), maxConfigSize),
		}}}
	}
	if d := checkNesting(filename, src); d != nil {
		return nil, Diagnostics{diags: hcl.Diagnostics{d}}
	}
	parser := hclparse.NewParser()
	f, diags := parser.ParseHCL(src, filename)
	out := Diagnostics{files: parser.Files()}
	if diags.HasErrors() || f == nil {
		out.diags = diags
		return nil, out
	}
	var raw rawConfig
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, &raw)...)
	v := validator{file: filename, diags: diags}
	p := v.policy(&raw, f.Body.MissingItemRange())
	out.diags = v.diags
	if out.HasErrors() {
		return nil, out
	}
	return p, out
}

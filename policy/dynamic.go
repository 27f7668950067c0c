package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/totp"
)

// rawTOTP is a door's totp block.
type rawTOTP struct {
	DefRange  hcl.Range      `hcl:",def_range"`
	PortRange *hcl.Attribute `hcl:"port_range,optional"`
	Length    *hcl.Attribute `hcl:"length,optional"`
	Step      *hcl.Attribute `hcl:"step,optional"`
	Skew      *hcl.Attribute `hcl:"skew,optional"`
	Protocol  *hcl.Attribute `hcl:"protocol,optional"`
}

// rawClient is a door's client block.
type rawClient struct {
	Name       string         `hcl:"name,label"`
	NameRange  hcl.Range      `hcl:"name,label_range"`
	DefRange   hcl.Range      `hcl:",def_range"`
	SecretFile *hcl.Attribute `hcl:"secret_file,optional"`

	// An SPA door's client (spa.go).
	KeyFile      *hcl.Attribute `hcl:"key_file,optional"`
	HMACDigest   *hcl.Attribute `hcl:"hmac_digest,optional"`
	AllowOtherIP *hcl.Attribute `hcl:"allow_other_ip,optional"`
}

const (
	allowPortRange  = `a string "LO-HI" of ports 1 to 65535, LO <= HI, e.g. "20000-29999" (the default)`
	allowProtocol   = `"tcp" (the default) or "udp"`
	allowOneTime    = `the path of a knockd one-time sequence file: one sequence per line, ports PORT[:PROTO] separated by commas or spaces, "#" lines ignored`
	allowSecretFile = `the path of a file holding a base32 secret of at least 128 bits, mode 0600 or stricter (sesame keygen -o FILE makes one)`
)

// dynamicDoor validates a door's totp block and clients, or its
// one_time_sequences, into d. It reports whether the door is of one of
// these kinds (then sequence must be absent).
func (v *validator) dynamicDoor(rd *rawDoor, d *Door) bool {
	if len(rd.SPA) > 0 {
		v.spaDoor(rd, d)
		return true
	}
	isTOTP, isOne := len(rd.TOTP) > 0, rd.OneTime != nil
	if !isTOTP && !isOne {
		for _, c := range rd.Clients {
			v.add(errorf(c.DefRange, "client without totp", "Door %q has a client block but no totp block: clients hold TOTP secrets. Add a totp { ... } block or remove the client.", rd.Name))
		}
		return false
	}
	if rd.Sequence != nil {
		what := "one_time_sequences"
		if isTOTP {
			what = "a totp block"
		}
		v.add(errorf(rd.Sequence.NameRange, "sequence with "+what, "Door %q has both sequence and %s; a door has exactly one of sequence, a totp block or one_time_sequences.", rd.Name, what))
	}
	if isTOTP && isOne {
		v.add(errorf(rd.OneTime.NameRange, "one_time_sequences with totp", "Door %q has both a totp block and one_time_sequences; a door has exactly one of sequence, a totp block or one_time_sequences.", rd.Name))
		return true
	}
	if isOne {
		for _, c := range rd.Clients {
			v.add(errorf(c.DefRange, "client without totp", "Door %q has a client block but no totp block: clients hold TOTP secrets.", rd.Name))
		}
		v.oneTime(rd, d)
		return true
	}
	for _, t := range rd.TOTP[1:] {
		v.add(errorf(t.DefRange, "Duplicate totp block", "Door %q already has a totp block at %s; a door has at most one.", rd.Name, pos(rd.TOTP[0].DefRange)))
	}
	v.totpBlock(rd, &rd.TOTP[0], d)
	return true
}

// clients checks the names of a door's client blocks (valid, unique) and
// reads each with read, the door kind's reader (TOTP or SPA).
func (v *validator) clients(rd *rawDoor, d *Door, read func(*rawClient) (Client, bool)) {
	seen := make(map[string]hcl.Range)
	for i := range rd.Clients {
		rc := &rd.Clients[i]
		if !validDoorName(rc.Name) {
			v.add(errorf(rc.NameRange, "Invalid client name", "%q is not a client name: a name has 1 to 64 characters among letters, digits, \"_\", \".\" and \"-\" (it ends up in logs).", rc.Name))
			continue
		}
		if first, dup := seen[rc.Name]; dup {
			v.add(errorf(rc.NameRange, "Duplicate client name", "A client named %q is already defined at %s; client names must be unique within a door.", rc.Name, pos(first)))
			continue
		}
		seen[rc.Name] = rc.NameRange
		if c, ok := read(rc); ok {
			d.Clients = append(d.Clients, c)
		}
	}
}

// client reads and checks a client's secret file.
func (v *validator) client(rc *rawClient) (Client, bool) {
	if !v.onlyClientAttrs(rc, "TOTP", "secret_file") {
		return Client{}, false
	}
	if rc.SecretFile == nil {
		v.add(errorf(rc.DefRange, "Missing required argument", "Client %q has no secret_file; a TOTP door's client needs one: it is %s.", rc.Name, allowSecretFile))
		return Client{}, false
	}
	s, ok := v.str(rc.SecretFile, allowSecretFile)
	if !ok {
		return Client{}, false
	}
	rng := rc.SecretFile.Expr.Range()
	path := v.resolve(s)
	b, ok := v.readSecretFile(rng, rc.Name, path, "secret", "secret_file is "+allowSecretFile+".")
	if !ok {
		return Client{}, false
	}
	secret, err := totp.ParseSecret(b)
	if err != nil {
		v.add(errorf(rng, "Invalid secret", "Client %q's secret file %s: %v. secret_file is %s.", rc.Name, path, err, allowSecretFile))
		return Client{}, false
	}
	return Client{Name: rc.Name, SecretFile: path, Secret: secret}, true
}

// readSecretFile reads a client's secret or key file (what names it in
// messages), refusing a missing, irregular or group/other-accessible file.
// allowed ends every error's detail.
func (v *validator) readSecretFile(rng hcl.Range, client, path, what, allowed string) ([]byte, bool) {
	bad := func(summary, format string, args ...any) ([]byte, bool) {
		v.add(errorf(rng, summary, format+" "+allowed, args...))
		return nil, false
	}
	b, err := secretfile.Read(path)
	var mode *secretfile.ModeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("Missing "+what+" file", "Client %q's %s file %s does not exist.", client, what, path)
	case errors.Is(err, secretfile.ErrNotRegular):
		return bad("Unreadable "+what+" file", "Client %q's %s file %s is not a regular file.", client, what, path)
	case errors.As(err, &mode):
		return bad(upper(what)+" file readable by others", "Client %q's %s file %s has mode %04o: group or others may read or write it. Run chmod 600 %s.", client, what, path, mode.Mode, path)
	case err != nil:
		return bad("Unreadable "+what+" file", "Client %q's %s file: %v.", client, what, err)
	}
	return b, true
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// resolve makes a relative path relative to the config file's directory.
func (v *validator) resolve(p string) string {
	if filepath.IsAbs(p) || v.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(v.file), p)
}

// integer evaluates attr as a whole number in lo..hi.
func (v *validator) integer(attr *hcl.Attribute, lo, hi int) (int, bool) {
	allowed := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	val, ok := v.value(attr, allowed)
	if !ok {
		return 0, false
	}
	if val.Type() != cty.Number {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be a number, not a %s: it is %s.", attr.Name, typeName(val.Type()), allowed))
		return 0, false
	}
	bf := val.AsBigFloat()
	n, acc := bf.Int64()
	if acc != big.Exact || n < int64(lo) || n > int64(hi) {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s is %s: it is %s.", attr.Name, bf.Text('g', 10), allowed))
		return 0, false
	}
	return int(n), true
}

// ParsePortRange parses "LO-HI" (or a single port).
func ParsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		b = a
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h == 0 {
		return 0, 0, fmt.Errorf("%q is not a port range", s)
	}
	if l > h {
		return 0, 0, fmt.Errorf("%q is not a port range: %d is above %d", s, l, h)
	}
	return uint16(l), uint16(h), nil
}

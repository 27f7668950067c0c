package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sesame-knock/sesame/onetime"
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

func (v *validator) totpBlock(rd *rawDoor, rt *rawTOTP, d *Door) {
	t := &TOTP{Lo: DefaultTOTPLo, Hi: DefaultTOTPHi, Length: DefaultTOTPLength, Step: DefaultTOTPStep, Skew: DefaultTOTPSkew, Proto: TCP}
	ok := true
	if rt.PortRange != nil {
		if s, sok := v.str(rt.PortRange, allowPortRange); sok {
			lo, hi, err := ParsePortRange(s)
			if err != nil {
				v.add(errorf(rt.PortRange.Expr.Range(), "Invalid port_range", "%v: port_range is %s.", err, allowPortRange))
				ok = false
			} else {
				t.Lo, t.Hi = lo, hi
			}
		} else {
			ok = false
		}
	}
	if rt.Length != nil {
		n, nok := v.integer(rt.Length, MinTOTPLength, MaxTOTPLength)
		ok = ok && nok
		t.Length = n
	}
	if rt.Skew != nil {
		n, nok := v.integer(rt.Skew, 0, MaxTOTPSkew)
		ok = ok && nok
		t.Skew = n
	}
	if rt.Step != nil {
		s, sok := v.duration(rt.Step, DefaultTOTPStep, MinTOTPStep, MaxTOTPStep)
		if sok && s%time.Second != 0 {
			v.add(errorf(rt.Step.Expr.Range(), "Invalid step", "step is %s; it must be a whole number of seconds (the counter is unix seconds / step).", s))
			sok = false
		}
		ok = ok && sok
		t.Step = s
	}
	if rt.Protocol != nil {
		if s, sok := v.str(rt.Protocol, allowProtocol); sok {
			p, err := ParseProto(s)
			if err != nil {
				v.add(errorf(rt.Protocol.Expr.Range(), "Invalid protocol", "%v: protocol is %s.", err, allowProtocol))
				ok = false
			}
			t.Proto = p
		} else {
			ok = false
		}
	}
	if !ok {
		return
	}
	if bits := totp.EntropyBits(t.Ports(), t.Length); bits < totp.MinEntropyBits {
		rng := rt.DefRange
		if rt.Length != nil {
			rng = rt.Length.Expr.Range()
		} else if rt.PortRange != nil {
			rng = rt.PortRange.Expr.Range()
		}
		v.add(errorf(rng, "TOTP knock too easy to guess", "Door %q's per-knock entropy is %.1f bits (log2 of the %d-port ordered sequences of distinct ports among %d ports); at least %.0f bits are required. Widen port_range or raise length.", rd.Name, bits, t.Length, t.Ports(), totp.MinEntropyBits))
		return
	}
	d.TOTP = t
	if len(rd.Clients) == 0 {
		v.add(errorf(rt.DefRange, "TOTP door without client", "Door %q has a totp block but no client; add client \"NAME\" { secret_file = \"/etc/sesame/NAME.key\" } blocks.", rd.Name))
	}
	v.clients(rd, d, v.client)
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
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("Missing "+what+" file", "Client %q's %s file %s does not exist.", client, what, path)
	case err != nil:
		return bad("Unreadable "+what+" file", "Client %q's %s file: %v.", client, what, err)
	case !st.Mode().IsRegular():
		return bad("Unreadable "+what+" file", "Client %q's %s file %s is not a regular file.", client, what, path)
	case st.Mode().Perm()&0o077 != 0:
		return bad(upper(what)+" file readable by others", "Client %q's %s file %s has mode %04o: group or others may read or write it. Run chmod 600 %s.", client, what, path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
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

// oneTime reads a door's one_time_sequences file.
func (v *validator) oneTime(rd *rawDoor, d *Door) {
	s, ok := v.str(rd.OneTime, allowOneTime)
	if !ok {
		return
	}
	rng := rd.OneTime.Expr.Range()
	path := v.resolve(s)
	seqs, err := onetime.Read(path)
	if err != nil {
		v.add(errorf(rng, "Invalid one_time_sequences", "Door %q: %s: %v. one_time_sequences is %s.", rd.Name, path, err, allowOneTime))
		return
	}
	d.OneTimeFile = path
	if !validDoorName(rd.Name) {
		return // reported; the name makes the state file's name
	}
	d.OneTimeUsed = onetime.StateFile(v.stateDirPath, rd.Name)
	if err := onetime.CheckWritable(v.stateDirPath); err != nil {
		v.add(errorf(rng, "One-time state not writable", "Door %q records each sequence it grants in %s before the grant, but %v: the door could never open. Make state_dir writable for the daemon (the packaged unit's StateDirectory= provides /var/lib/sesame; ProtectSystem=strict makes everything else read-only) or set state_dir. %s itself is only read.", rd.Name, d.OneTimeUsed, err, path))
		return
	}
	used, err := onetime.ReadUsed(d.OneTimeUsed)
	if err != nil {
		v.add(errorf(rng, "Unreadable one-time state", "Door %q: %v. That file records which sequences of %s were used; without it sesame cannot tell, so the door stays shut. Restore it, or delete it to make every uncommented line usable again.", rd.Name, err, path))
		return
	}
	for _, sq := range seqs {
		key := sq.Key()
		if used[key] {
			continue
		}
		used[key] = true // a repeated line is the same sequence: once
		o := OneTimeSeq{Line: sq.Line, Key: key}
		for _, st := range sq.Steps {
			p, _ := ParseProto(st.Proto)
			o.Steps = append(o.Steps, PortProto{Port: st.Port, Proto: p})
		}
		d.OneTime = append(d.OneTime, o)
	}
	if len(d.OneTime) == 0 {
		v.add(warnf(rng, "One-time sequences exhausted", "%s has no unused sequence (used ones are recorded in %s): door %q refuses every knock until you add sequences and reload (SIGHUP).", path, d.OneTimeUsed, rd.Name))
		return
	}
	d.Sequence = d.OneTime[0].Steps
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

// totpOpenOverlap refuses a TOTP range that holds a port the door opens: a
// connection to it would count as a knock.
func (v *validator) totpOpenOverlap(rd *rawDoor, d *Door) {
	if d.TOTP == nil {
		return
	}
	t := d.TOTP
	for _, o := range d.Open {
		if (PortRange{t.Lo, t.Hi, t.Proto}).Contains(o) {
			v.add(errorf(rd.TOTP[0].DefRange, "TOTP range holds an opened port", "port_range %d-%d/%s contains %s, which door %q opens: a connection to it would count as a knock. Move the range.", t.Lo, t.Hi, t.Proto, o, rd.Name))
			return
		}
	}
}

package policy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sesame-knock/sesame/spa"
)

// SPA is a door opened by fwknop-compatible single packet authorization
// (package spa): a UDP packet to Port from one of the door's clients asks
// for some of Open, for OpenFor or a client-chosen time capped by
// MaxOpenFor.
type SPA struct {
	Port       uint16        // UDP; never opened as a socket
	MaxAge     time.Duration // timestamp window either side of now
	MaxOpenFor time.Duration // cap on a client-requested timeout (message type 3)
}

// rawSPA is a door's spa block.
type rawSPA struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Port     *hcl.Attribute `hcl:"port,optional"`
	MaxAge   *hcl.Attribute `hcl:"max_age,optional"`
}

// SPA defaults and bounds, stated in validation errors.
const (
	DefaultSPAPort       = spa.DefaultPort
	DefaultSPAMaxAge     = spa.DefaultMaxAge
	MinSPAMaxAge         = 10 * time.Second
	MaxSPAMaxAge         = time.Hour
	DefaultSPAMaxOpenFor = 5 * time.Minute
	DefaultStateDir      = "/var/lib/sesame"
)

const (
	allowKeyFile    = `the path of an fwknop key file (KEY_BASE64 and HMAC_KEY_BASE64 lines, as "fwknop --key-gen" or "sesame keygen --spa" print them), mode 0600 or stricter`
	allowHMACDigest = `one of md5, sha1, sha256 (the default), sha384, sha512, sha3_256, sha3_512: the client's --hmac-digest-type`
	allowBool       = `true or false`
	allowStateDir   = `an absolute directory path; the default is "/var/lib/sesame"`
	allowSPAPort    = `a UDP port from 1 to 65535; the default is 62201 (fwknop's)`
	oneKind         = "a door has exactly one of sequence, a totp block, one_time_sequences or an spa block"
)

// spaDoor validates an SPA door's spa block and clients into d.
func (v *validator) spaDoor(rd *rawDoor, d *Door) {
	for _, other := range []struct {
		attr *hcl.Attribute
		what string
	}{{rd.Sequence, "sequence"}, {rd.OneTime, "one_time_sequences"}, {rd.CloseSequence, "close_sequence"}} {
		if other.attr != nil {
			v.add(errorf(other.attr.NameRange, other.what+" with an spa block", "Door %q has both an spa block and %s; %s.", rd.Name, other.what, oneKind))
		}
	}
	for _, t := range rd.TOTP {
		v.add(errorf(t.DefRange, "totp with an spa block", "Door %q has both an spa block and a totp block; %s.", rd.Name, oneKind))
	}
	for _, s := range rd.SPA[1:] {
		v.add(errorf(s.DefRange, "Duplicate spa block", "Door %q already has an spa block at %s; a door has at most one.", rd.Name, pos(rd.SPA[0].DefRange)))
	}
	rs := &rd.SPA[0]
	s := &SPA{Port: DefaultSPAPort, MaxAge: DefaultSPAMaxAge}
	if rs.Port != nil {
		n, ok := v.integer(rs.Port, 1, 65535)
		if ok {
			s.Port = uint16(n)
		}
	}
	if ma, ok := v.duration(rs.MaxAge, DefaultSPAMaxAge, MinSPAMaxAge, MaxSPAMaxAge); ok {
		s.MaxAge = ma
	}
	d.SPA = s
	if len(rd.Clients) == 0 {
		v.add(errorf(rs.DefRange, "SPA door without client", "Door %q has an spa block but no client; add client \"NAME\" { key_file = \"/etc/sesame/NAME.spa\" } blocks (sesame keygen --spa -o FILE makes a key file).", rd.Name))
	}
	v.clients(rd, d, v.spaClient)
}

// spaClient reads and checks an SPA client's key file and options.
func (v *validator) spaClient(rc *rawClient) (Client, bool) {
	if !v.onlyClientAttrs(rc, "SPA", "key_file, hmac_digest and allow_other_ip") {
		return Client{}, false
	}
	if rc.KeyFile == nil {
		v.add(errorf(rc.DefRange, "Missing required argument", "Client %q has no key_file; an SPA door's client needs one: it is %s.", rc.Name, allowKeyFile))
		return Client{}, false
	}
	c := Client{Name: rc.Name}
	ok := true
	if rc.AllowOtherIP != nil {
		c.AllowOtherIP, ok = v.boolean(rc.AllowOtherIP)
	}
	var digest spa.Digest
	if rc.HMACDigest != nil {
		if s, sok := v.str(rc.HMACDigest, allowHMACDigest); sok {
			d, err := spa.ParseDigest(s)
			if err != nil {
				v.add(errorf(rc.HMACDigest.Expr.Range(), "Invalid hmac_digest", "%v: hmac_digest is %s.", err, allowHMACDigest))
				ok = false
			}
			digest = d
		} else {
			ok = false
		}
	}
	s, sok := v.str(rc.KeyFile, allowKeyFile)
	if !sok {
		return Client{}, false
	}
	rng := rc.KeyFile.Expr.Range()
	c.KeyFile = v.resolve(s)
	b, rok := v.readSecretFile(rng, rc.Name, c.KeyFile, "key", "key_file is "+allowKeyFile+".")
	if !rok {
		return Client{}, false
	}
	keys, err := spa.ParseKeys(b)
	if err == nil {
		err = keys.Validate()
	}
	if err != nil {
		v.add(errorf(rng, "Invalid key file", "Client %q's key file %s: %v. key_file is %s.", rc.Name, c.KeyFile, err, allowKeyFile))
		return Client{}, false
	}
	if digest != 0 {
		keys.Digest = digest // hmac_digest overrides the file's HMAC_DIGEST_TYPE
	}
	c.Keys = keys
	return c, ok
}

// onlyClientAttrs refuses a client's attributes that belong to the other
// kind of door. kind is this door's kind, allowed the attributes it takes.
func (v *validator) onlyClientAttrs(rc *rawClient, kind, allowed string) bool {
	ok := true
	wrong := func(a *hcl.Attribute) {
		if a != nil {
			v.add(errorf(a.NameRange, "Unsupported argument", "%s does not belong in a %s door's client: client %q takes %s.", a.Name, kind, rc.Name, allowed))
			ok = false
		}
	}
	if kind == "SPA" {
		wrong(rc.SecretFile)
	} else {
		wrong(rc.KeyFile)
		wrong(rc.HMACDigest)
		wrong(rc.AllowOtherIP)
	}
	return ok
}

// boolean evaluates attr as true or false.
func (v *validator) boolean(attr *hcl.Attribute) (bool, bool) {
	val, ok := v.value(attr, allowBool)
	if !ok {
		return false, false
	}
	if val.Type() != cty.Bool {
		v.add(errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be %s, not a %s.", attr.Name, allowBool, typeName(val.Type())))
		return false, false
	}
	return val.True(), true
}

// spaOnly validates max_open_for, which only an SPA door takes; it runs
// once open_for is known.
func (v *validator) spaOnly(rd *rawDoor, d *Door) {
	if d.SPA == nil {
		if rd.MaxOpenFor != nil {
			v.add(errorf(rd.MaxOpenFor.NameRange, "max_open_for without an spa block", "Door %q is not an SPA door: max_open_for caps the timeout an SPA client asks for. Remove it.", rd.Name))
		}
		return
	}
	def := max(DefaultSPAMaxOpenFor, d.OpenFor)
	m, ok := v.duration(rd.MaxOpenFor, def, MinOpenFor, MaxOpenFor)
	if !ok {
		m = def
	} else if m < d.OpenFor {
		v.add(errorf(rd.MaxOpenFor.Expr.Range(), "max_open_for below open_for", "max_open_for is %s but open_for is %s: the cap on a client's timeout cannot be below the default grant. Raise max_open_for or lower open_for.", fmtDur(m), fmtDur(d.OpenFor)))
	}
	d.SPA.MaxOpenFor = m
}

// stateDir validates state_dir.
func (v *validator) stateDir(attr *hcl.Attribute) string {
	if attr == nil {
		return DefaultStateDir
	}
	s, ok := v.str(attr, allowStateDir)
	if !ok {
		return DefaultStateDir
	}
	if !filepath.IsAbs(s) || strings.ContainsRune(s, 0) {
		v.add(errorf(attr.Expr.Range(), "Invalid state_dir", "%q is not an absolute path: state_dir is %s.", s, allowStateDir))
		return DefaultStateDir
	}
	return filepath.Clean(s)
}

// spaCross refuses an SPA port that is a guarded port, a knock port or
// range, or another SPA door's port: the capture reader would not know
// whether a packet is a knock or an SPA request.
func (v *validator) spaCross(raw *rawConfig, p *Policy) {
	if len(raw.Doors) != len(p.Doors) {
		return
	}
	guarded := p.Guarded()
	knocks := p.KnockPorts()
	ranges := p.KnockRanges()
	first := make(map[uint16]int)
	for i, d := range p.Doors {
		if d.SPA == nil || len(raw.Doors[i].SPA) == 0 {
			continue
		}
		rs := raw.Doors[i].SPA[0]
		rng := rs.DefRange
		if rs.Port != nil {
			rng = rs.Port.Expr.Range()
		}
		pp := PortProto{Port: d.SPA.Port, Proto: UDP}
		if j, dup := first[pp.Port]; dup {
			v.add(errorf(rng, "Duplicate SPA port", "Door %q already listens for SPA packets on %s; each SPA door needs its own port (put several clients in one door instead).", p.Doors[j].Name, pp))
			continue
		}
		first[pp.Port] = i
		switch {
		case slices.Contains(guarded, pp):
			v.add(errorf(rng, "SPA port is a guarded port", "%s is opened by a door: the SPA port must be a port that no door opens.", pp))
		case slices.Contains(knocks, pp):
			v.add(errorf(rng, "SPA port is a knock port", "%s is a knock port of another door: the SPA port must differ from every knock port.", pp))
		default:
			for _, r := range ranges {
				if r.Contains(pp) {
					v.add(errorf(rng, "SPA port is in a TOTP range", "%s lies in TOTP port_range %s: the SPA port must differ from every knock port.", pp, r))
				}
			}
		}
	}
}

// SPAPorts returns the UDP ports of SPA doors, sorted: what the capture
// filter passes with their payload.
func (p *Policy) SPAPorts() []uint16 {
	var out []uint16
	for _, d := range p.Doors {
		if d.SPA != nil {
			out = append(out, d.SPA.Port)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SPADoor returns the SPA door listening on port, or nil.
func (p *Policy) SPADoor(port uint16) *Door {
	for i := range p.Doors {
		if d := &p.Doors[i]; d.SPA != nil && d.SPA.Port == port {
			return d
		}
	}
	return nil
}

// String describes the spa block for summaries: "62201/udp, max age 2m".
func (s *SPA) String() string {
	return fmt.Sprintf("%d/udp, max age %s, client timeout up to %s", s.Port, fmtDur(s.MaxAge), fmtDur(s.MaxOpenFor))
}

// spaSummary: "spa: spa 62201/udp, max age 2m, client timeout up to 5m,
// 1 client(s), opens up to 22/tcp,443/tcp for 30s".
func (d *Door) spaSummary(b *strings.Builder) {
	fmt.Fprintf(b, "%s: spa %s, %d client(s), %s for %s", d.Name, d.SPA, len(d.Clients), d.opens("up to "), fmtDur(d.OpenFor))
}

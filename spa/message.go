package spa

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Type is the SPA message type.
type Type uint8

// fwknop 2.6 message types. Only Access and ClientTimeoutAccess are
// accepted; the others are decoded only to be refused.
const (
	TypeCommand                  Type = 0
	TypeAccess                   Type = 1
	TypeNATAccess                Type = 2
	TypeClientTimeoutAccess      Type = 3
	TypeClientTimeoutNATAccess   Type = 4
	TypeLocalNATAccess           Type = 5
	TypeClientTimeoutLocalNATAcc Type = 6
)

func (t Type) hasNAT() bool     { return t == 2 || t == 4 || t == 5 || t == 6 }
func (t Type) hasTimeout() bool { return t == 3 || t == 4 || t == 6 }

// Protocols a message may name.
var protocols = []string{"tcp", "udp", "icmp", "none"}

// Access is one "proto/port" a client asks for. Proto is one of tcp,
// udp, icmp, none (lower case).
type Access struct {
	Proto string
	Port  uint16
}

func (a Access) String() string { return a.Proto + "/" + strconv.Itoa(int(a.Port)) }

// ParseAccess reads "tcp/22" (fwknop's -A order).
func ParseAccess(s string) (Access, error) {
	proto, port, ok := strings.Cut(s, "/")
	if !ok {
		return Access{}, fmt.Errorf("access %q: want proto/port, e.g. tcp/22", s)
	}
	proto = strings.ToLower(proto)
	known := false
	for _, p := range protocols {
		known = known || p == proto
	}
	if !known {
		return Access{}, fmt.Errorf("access %q: protocol must be one of %s", s, strings.Join(protocols, " "))
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Access{}, fmt.Errorf("access %q: port must be 0-65535", s)
	}
	return Access{Proto: proto, Port: uint16(n)}, nil
}

// Message is a verified SPA request.
type Message struct {
	User      string
	Timestamp time.Time // from the packet, whole seconds
	Version   string    // client's protocol version, e.g. "3.0.0"
	Type      Type      // TypeAccess or TypeClientTimeoutAccess
	// Addr is the address the client asks access for: IPv4 as fwknop sends
	// it, or IPv6 (sesame's extension). An unspecified address (0.0.0.0 or
	// ::) means the packet's source.
	Addr          netip.Addr
	Access        []Access      // at least one
	ClientTimeout time.Duration // TypeClientTimeoutAccess only; 0 otherwise
}

// plaintext is the decoded field layout, before type and age policy.
type plaintext struct {
	rand, user, version string
	ts                  int64
	typ                 Type
	msg                 string // decoded
	timeout             uint64
	hasServerAuth       bool
}

var b64 = base64.RawStdEncoding

func decodeField(name, s string) (string, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%s: not base64", name)
	}
	return string(b), nil
}

// parsePlaintext checks the layout and the inner digest.
func parsePlaintext(pt []byte) (plaintext, error) {
	var p plaintext
	for _, c := range pt {
		if c < 0x20 || c > 0x7e {
			return p, refuse(ReasonDecrypt, "plaintext has byte 0x%02x: wrong encryption key?", c)
		}
	}
	s := string(pt)
	f := strings.Split(s, ":")
	if len(f) < 7 || len(f) > 10 {
		return p, refuse(ReasonBadMessage, "%d fields; want 7-10", len(f))
	}
	// The digest first: nothing else is trusted before it matches.
	dig := f[len(f)-1]
	body := s[:len(s)-len(dig)-1]
	cands := innerDigests(len(dig))
	if cands == nil {
		return p, refuse(ReasonBadDigest, "digest of %d characters matches no hash", len(dig))
	}
	ok := false
	for _, d := range cands {
		ok = ok || d.sum([]byte(body)) == dig
	}
	if !ok {
		return p, refuse(ReasonBadDigest, "inner %s digest does not match", cands[0])
	}
	var err error
	p.rand = f[0]
	if len(p.rand) != 16 || strings.Trim(p.rand, "0123456789") != "" {
		return p, refuse(ReasonBadMessage, "random field %q: want 16 digits", p.rand)
	}
	if p.user, err = decodeField("user", f[1]); err != nil || !printable(p.user) {
		return p, refuse(ReasonBadMessage, "user field %q: want base64 of a name", f[1])
	}
	if p.ts, err = strconv.ParseInt(f[2], 10, 64); err != nil || p.ts < 0 {
		return p, refuse(ReasonBadMessage, "timestamp %q: want unix seconds", f[2])
	}
	if p.version = f[3]; len(p.version) > 16 {
		return p, refuse(ReasonBadMessage, "version field of %d characters", len(p.version))
	}
	t, err := strconv.ParseUint(f[4], 10, 8)
	if err != nil || len(f[4]) != 1 {
		return p, refuse(ReasonBadMessage, "type %q: want one digit", f[4])
	}
	p.typ = Type(t)
	if p.msg, err = decodeField("message", f[5]); err != nil {
		return p, refuse(ReasonBadMessage, "%v", err)
	}
	// Between the message and the digest: [nat] [server_auth] [timeout].
	rest := f[6 : len(f)-1]
	if p.typ.hasNAT() {
		if len(rest) == 0 {
			return p, refuse(ReasonBadMessage, "type %d without its NAT field", p.typ)
		}
		if _, err := decodeField("nat", rest[0]); err != nil {
			return p, refuse(ReasonBadMessage, "%v", err)
		}
		rest = rest[1:]
	}
	if p.typ.hasTimeout() {
		if len(rest) == 0 {
			return p, refuse(ReasonBadMessage, "type %d without its timeout field", p.typ)
		}
		to := rest[len(rest)-1]
		if p.timeout, err = strconv.ParseUint(to, 10, 32); err != nil {
			return p, refuse(ReasonBadMessage, "timeout %q: want seconds", to)
		}
		rest = rest[:len(rest)-1]
	}
	switch len(rest) {
	case 0:
	case 1:
		if _, err := decodeField("server_auth", rest[0]); err != nil {
			return p, refuse(ReasonBadMessage, "%v", err)
		}
		p.hasServerAuth = true
	default:
		return p, refuse(ReasonBadMessage, "%d fields for type %d", len(f), p.typ)
	}
	return p, nil
}

// parseAccessMsg reads "ADDR,proto/port[,proto/port...]".
func parseAccessMsg(s string) (netip.Addr, []Access, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 {
		return netip.Addr{}, nil, errors.New("message: want ADDR,proto/port")
	}
	addr, err := netip.ParseAddr(parts[0])
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, nil, fmt.Errorf("message: address %q is not IPv4 or IPv6", parts[0])
	}
	addr = addr.Unmap()
	acc := make([]Access, 0, len(parts)-1)
	for _, p := range parts[1:] {
		a, err := ParseAccess(p)
		if err != nil {
			return netip.Addr{}, nil, fmt.Errorf("message: %w", err)
		}
		acc = append(acc, a)
	}
	return addr, acc, nil
}

// formatPlaintext writes m as fwknop 2.6 does, with the inner digest
// (SHA-256, the client's default).
func formatPlaintext(m Message, rand string, ts int64) string {
	var b strings.Builder
	b.WriteString(rand)
	b.WriteByte(':')
	b.WriteString(b64.EncodeToString([]byte(m.User)))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(ts, 10))
	b.WriteString(":3.0.0:")
	b.WriteString(strconv.Itoa(int(m.Type)))
	b.WriteByte(':')
	msg := m.Addr.String()
	for _, a := range m.Access {
		msg += "," + a.String()
	}
	b.WriteString(b64.EncodeToString([]byte(msg)))
	if m.Type == TypeClientTimeoutAccess {
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(int64(m.ClientTimeout/time.Second), 10))
	}
	body := b.String()
	return body + ":" + SHA256.sum([]byte(body))
}

// printable reports whether s is non-empty printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

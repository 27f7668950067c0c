package spa

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"time"
)

// Wire length limits (fwknopd's MIN_SPA_DATA_SIZE and a UDP payload that
// fits an Ethernet frame).
const (
	MinWireLen = 140
	MaxWireLen = 1500
)

// DefaultMaxAge is fwknopd's MAX_SPA_PACKET_AGE.
const DefaultMaxAge = 120 * time.Second

// Verifier checks packets from one client (one set of keys). It is safe
// for concurrent use if its ReplayCache is (the package's is).
type Verifier struct {
	keys   Keys
	maxAge time.Duration
	replay *ReplayCache
	macLen int
}

// NewVerifier makes a Verifier for keys. maxAge is the timestamp window
// either side of now (0: DefaultMaxAge). replay may be nil (no replay
// check: for tests and tools); several Verifiers may share one cache.
func NewVerifier(keys Keys, maxAge time.Duration, replay *ReplayCache) (*Verifier, error) {
	if err := keys.Validate(); err != nil {
		return nil, err
	}
	if maxAge < 0 {
		return nil, fmt.Errorf("max age %v is negative", maxAge)
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	return &Verifier{keys: keys, maxAge: maxAge, replay: replay, macLen: keys.Digest.EncodedLen()}, nil
}

// MaxAge is the timestamp window either side of now.
func (v *Verifier) MaxAge() time.Duration { return v.maxAge }

// wireChar marks fwknop's base64 alphabet.
var wireChar = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" {
		t[c] = true
	}
	return t
}()

// ReplayKey is the replay cache's key for a wire string: its SHA-256.
func ReplayKey(wire []byte) [32]byte { return sha256.Sum256(wire) }

// Verify checks one UDP payload at time now and returns the request, or an
// *Error saying why it was refused. Order: length and charset, HMAC
// (constant time), replay, decryption, fields and inner digest, type, age.
// A packet that decrypted with a valid digest enters the replay cache,
// even if its type or age is then refused, until max(now, its timestamp)
// + maxAge: a packet from a clock running ahead, refused as too new now,
// cannot be replayed once its time comes.
func (v *Verifier) Verify(wire []byte, now time.Time) (Message, error) {
	if len(wire) < MinWireLen || len(wire) > MaxWireLen {
		return Message{}, refuse(ReasonBadLength, "%d bytes; want %d-%d", len(wire), MinWireLen, MaxWireLen)
	}
	for i, c := range wire {
		if !wireChar[c] {
			return Message{}, refuse(ReasonBadEncoding, "byte 0x%02x at %d is not base64", c, i)
		}
	}
	switch wire[0] {
	case '8', '9', '+', '/':
	default:
		if wire[0] == gpgPrefix[0] && wire[1] == gpgPrefix[1] {
			return Message{}, refuse(ReasonGPGRefused, "GPG-encrypted packet; only Rijndael keys are supported")
		}
		return Message{}, refuse(ReasonBadEncoding, "does not start as an fwknop Rijndael packet")
	}
	ct, mac := wire[:len(wire)-v.macLen], wire[len(wire)-v.macLen:]
	if !checkMAC(v.keys, ct, mac) {
		return Message{}, refuse(ReasonBadHMAC, "%s HMAC does not match", v.keys.Digest)
	}
	var rkey [32]byte
	if v.replay != nil {
		rkey = ReplayKey(wire)
		if v.replay.Seen(rkey, now) {
			return Message{}, refuse(ReasonReplay, "packet seen before")
		}
	}
	pt, err := open(v.keys, ct)
	if err != nil {
		return Message{}, err
	}
	p, err := parsePlaintext(pt)
	if err != nil {
		return Message{}, err
	}
	if v.replay != nil {
		v.replay.AddUntil(rkey, now, replayUntil(now, p.ts, v.maxAge))
	}
	return v.accept(p, now)
}

// replayUntil is how long a packet stamped ts must stay in the replay
// cache: as long as the age check could let it through, ts + maxAge, and
// never less than maxAge from now (a packet whose clock runs behind).
func replayUntil(now time.Time, ts int64, maxAge time.Duration) time.Time {
	from := now
	if ts > now.Unix() {
		from = time.Unix(ts, 0)
	}
	return from.Add(maxAge)
}

// accept applies type and age policy to a decoded plaintext.
func (v *Verifier) accept(p plaintext, now time.Time) (Message, error) {
	switch {
	case p.typ == TypeCommand:
		return Message{}, refuse(ReasonCommandRefused, "command message from %q: commands are never executed", p.user)
	case p.typ.hasNAT():
		return Message{}, refuse(ReasonNATRefused, "NAT message (type %d) from %q", p.typ, p.user)
	case p.typ != TypeAccess && p.typ != TypeClientTimeoutAccess:
		return Message{}, refuse(ReasonUnsupportedType, "message type %d from %q", p.typ, p.user)
	}
	addr, acc, err := parseAccessMsg(p.msg)
	if err != nil {
		return Message{}, refuse(ReasonBadMessage, "%v", err)
	}
	ts := time.Unix(p.ts, 0)
	if d := now.Sub(ts); d > v.maxAge {
		return Message{}, refuse(ReasonTooOld, "timestamp %d is %v old; max %v", p.ts, d.Truncate(time.Second), v.maxAge)
	} else if -d > v.maxAge {
		return Message{}, refuse(ReasonTooNew, "timestamp %d is %v ahead; max %v", p.ts, (-d).Truncate(time.Second), v.maxAge)
	}
	m := Message{User: p.user, Timestamp: ts, Version: p.version, Type: p.typ, Addr: addr, Access: acc}
	if p.typ == TypeClientTimeoutAccess {
		m.ClientTimeout = time.Duration(p.timeout) * time.Second
	}
	return m, nil
}

// Target is the address to grant: the embedded address, or src when the
// client asked for its packet's source (0.0.0.0 or ::). The daemon decides
// whether a Target other than src is allowed.
func (m Message) Target(src netip.Addr) netip.Addr {
	if m.Addr.IsUnspecified() {
		return src
	}
	return m.Addr
}

// VerifyAny tries each client's Verifier in turn (a door with several
// clients) and returns the first accepted Message with the index of its
// Verifier. When all refuse, the error is the most telling one: a refusal
// after a matching HMAC (replay, too old, ...) rather than bad-hmac, so the
// log names the real reason. Garbage costs one HMAC per client.
func VerifyAny(vs []*Verifier, wire []byte, now time.Time) (Message, int, error) {
	var first error
	for i, v := range vs {
		m, err := v.Verify(wire, now)
		if err == nil {
			return m, i, nil
		}
		if first == nil || ReasonOf(first) == ReasonBadHMAC && ReasonOf(err) != ReasonBadHMAC {
			first = err
		}
	}
	if first == nil {
		first = refuse(ReasonBadHMAC, "no client configured")
	}
	return Message{}, -1, first
}

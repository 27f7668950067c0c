package fleet

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// Burn is what a record says its grant used up at the origin, so that the
// same secret is refused at every member: an SPA packet's replay key, a
// TOTP door's client and counter, or a one-time sequence's key.
type Burn struct {
	SPA     *[32]byte // the SPA packet's replay key (spa.ReplayKey)
	Client  string    // a TOTP burn: the door's client...
	Counter uint64    // ...and the time step it knocked with
	OneTime string    // a one-time burn: the sequence's key (onetime.Seq.Key, 64 hex)
}

// MaxBurns bounds the burn entries of one record.
const MaxBurns = 8

// SPABurn is the burn entry of an SPA packet with replay key k.
func SPABurn(k [32]byte) string { return "spa:sha256:" + hex.EncodeToString(k[:]) }

// OneTimeBurn is the burn entry of a one-time sequence with key k
// (onetime.Seq.Key: the SHA-256 of its steps, in hex).
func OneTimeBurn(k string) string { return "onetime:sha256:" + k }

// TOTPBurn is the burn entry of a TOTP knock by client at counter.
func TOTPBurn(client string, counter uint64) string {
	return "totp:" + client + ":" + strconv.FormatUint(counter, 10)
}

// parseBurn parses one burn entry.
func parseBurn(s string) (Burn, error) {
	switch {
	case strings.HasPrefix(s, "spa:sha256:"):
		b, err := hex.DecodeString(s[len("spa:sha256:"):])
		if err != nil || len(b) != 32 || hex.EncodeToString(b) != s[len("spa:sha256:"):] {
			return Burn{}, fmt.Errorf("burn %q: want spa:sha256: and 64 lowercase hex digits", s)
		}
		var k [32]byte
		copy(k[:], b)
		return Burn{SPA: &k}, nil
	case strings.HasPrefix(s, "onetime:sha256:"):
		k := s[len("onetime:sha256:"):]
		if b, err := hex.DecodeString(k); err != nil || len(b) != 32 || hex.EncodeToString(b) != k {
			return Burn{}, fmt.Errorf("burn %q: want onetime:sha256: and 64 lowercase hex digits", s)
		}
		return Burn{OneTime: k}, nil
	case strings.HasPrefix(s, "totp:"):
		rest := s[len("totp:"):]
		i := strings.LastIndexByte(rest, ':')
		if i < 1 || i > 64 {
			return Burn{}, fmt.Errorf("burn %q: want totp:CLIENT:COUNTER", s)
		}
		n, err := strconv.ParseUint(rest[i+1:], 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != rest[i+1:] {
			return Burn{}, fmt.Errorf("burn %q: counter: want a decimal number", s)
		}
		return Burn{Client: rest[:i], Counter: n}, nil
	}
	return Burn{}, fmt.Errorf("burn %q: want spa:sha256:HEX, onetime:sha256:HEX or totp:CLIENT:COUNTER", s)
}

// checkBurns validates a payload's burn entries (Decode refuses a record
// whose entries are malformed: one record has one meaning).
func checkBurns(bs []string) error {
	if len(bs) > MaxBurns {
		return fmt.Errorf("%d burn entries: want at most %d", len(bs), MaxBurns)
	}
	for _, s := range bs {
		if _, err := parseBurn(s); err != nil {
			return err
		}
	}
	return nil
}

// Receiver is a host's side of the fleet: Decide, the per-origin rate cap
// and the ids already applied, plus which origin wrote which fleet grant,
// so that a close removes exactly what that origin's open added. It is not
// safe for concurrent use: the daemon's loop owns it. It reads no clock.
type Receiver struct {
	Members *Members
	Self    Self
	Seen    *Seen
	Limiter Limiter
	// Unsynced, when set, refuses every record (ReasonClockUnsynced).
	Unsynced bool

	writers map[writerKey]writer
}

type writerKey struct {
	door string
	src  netip.Addr
}

// writer is the fleet record whose grant a (door, src) holds.
type writer struct {
	origin, id string
	ports      []policy.PortProto
	notAfter   time.Time
}

// Action is what the receiver does with one record: Decision says whether
// it applies (and why not); an open adds Ports for Src to the door with
// Decision.Timeout and Decision.Comment; a close with Revoke removes
// RevokePorts, what the same origin's open added (a close with nothing of
// its origin's to remove applies and does nothing). Burns are what the
// origin's grant used up, to be burned here too.
type Action struct {
	Decision
	Revoke      bool
	RevokePorts []policy.PortProto
	Burns       []Burn
}

// NewReceiver returns a receiver for self that remembers up to seenCap
// ids and lets each origin apply rate records a second in bursts of burst.
func NewReceiver(m *Members, self Self, seenCap int, rate float64, burst int) *Receiver {
	return &Receiver{Members: m, Self: self, Seen: NewSeen(seenCap), Limiter: Limiter{Rate: rate, Burst: burst}}
}

// Receive decides on the envelope b, delivered by the transport under the
// member name from ("" when unknown), at now. It does not remember the
// record: call Landed once its grant or revoke is in the kernel.
func (r *Receiver) Receive(b []byte, from string, now time.Time) Action {
	env, err := Decode(b)
	if err != nil {
		return Action{Decision: Decision{Reason: decodeReason(err), Err: err}}
	}
	env.From = from
	d := Decide(env, r.Members, r.Self, now, r.Seen)
	if d.Applies() && r.Unsynced {
		d = refused(d, ReasonClockUnsynced)
	}
	d = r.Limiter.Admit(d, now)
	a := Action{Decision: d}
	if !d.Applies() {
		return a
	}
	for _, s := range env.Payload.Burn {
		if b, err := parseBurn(s); err == nil { // Decode checked them
			a.Burns = append(a.Burns, b)
		}
	}
	if d.Kind == KindClose {
		if w, ok := r.writers[writerKey{d.DoorName, d.Src}]; ok && w.origin == d.Origin && now.Before(w.notAfter) {
			a.Revoke, a.RevokePorts = true, w.ports
		}
	}
	return a
}

// refused is d refused for reason, keeping only what the log line needs.
func refused(d Decision, reason Reason) Decision {
	return Decision{Reason: reason, Kind: d.Kind, Origin: d.Origin, ID: d.ID, DoorName: d.DoorName, SrcText: d.SrcText}
}

// Landed remembers an applied record: its id until not_after (a replay is
// refused), and for an open its origin as the writer of its grant; a
// close forgets the writer it revoked.
func (r *Receiver) Landed(a Action) {
	if !a.Applies() {
		return
	}
	r.Seen.Add(a.Origin, a.ID, a.NotAfter)
	k := writerKey{a.DoorName, a.Src}
	switch a.Kind {
	case KindOpen:
		if r.writers == nil {
			r.writers = map[writerKey]writer{}
		}
		r.writers[k] = writer{origin: a.Origin, id: a.ID, ports: a.Ports, notAfter: a.NotAfter}
	case KindClose:
		if a.Revoke {
			delete(r.writers, k)
		}
	}
}

// Local says that this host granted door to src itself: the element is no
// longer a fleet grant, and no fleet close removes it.
func (r *Receiver) Local(door string, src netip.Addr) {
	delete(r.writers, writerKey{door, src})
}

// Expire forgets ids and writers whose not_after is at or before now.
func (r *Receiver) Expire(now time.Time) {
	r.Seen.Expire(now)
	for k, w := range r.writers {
		if !now.Before(w.notAfter) {
			delete(r.writers, k)
		}
	}
}

// Writers returns how many fleet grants the receiver knows the origin of.
func (r *Receiver) Writers() int { return len(r.writers) }

// Origin is what a member publishes when one of its doors opens or closes:
// it builds and signs records.
type Origin struct {
	Fleet, Member string
	Key           ed25519.PrivateKey
}

// Record returns the signed record of kind (KindOpen or KindClose) for
// door, group and src over ports, issued at now and valid for openFor,
// with its id.
func (o Origin) Record(kind, group, door string, src netip.Addr, ports []policy.PortProto, openFor time.Duration, now time.Time, burns []string) (id string, env []byte, err error) {
	ps := make([]string, len(ports))
	for i, pp := range ports {
		ps[i] = pp.String()
	}
	id = NewID()
	issued := now.UnixMilli()
	p := Payload{
		Fleet: o.Fleet, Group: group, Origin: o.Member, ID: id, Kind: kind,
		Door: door, Src: src.Unmap().String(), Ports: ps,
		IssuedAt: issued, NotAfter: issued + openFor.Milliseconds(), Burn: burns,
	}
	env, err = Sign(o.Key, p)
	return id, env, err
}

package spa

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Encode builds the wire string fwknop 2.6 would send for m, timestamped
// now: RAND, user, now, version "3.0.0", type, message, timeout (type 3),
// SHA-256 inner digest, AES-256-CBC with a random salt, and keys.Digest's
// HMAC. m.Timestamp and m.Version are ignored. m.Type must be TypeAccess
// or TypeClientTimeoutAccess (with a ClientTimeout of whole seconds). An
// IPv6 m.Addr is sesame's extension (see the package doc); the zero
// address (0.0.0.0 or ::) asks for the packet's source. rnd nil means
// crypto/rand.
func Encode(keys Keys, m Message, rnd io.Reader, now time.Time) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := keys.Validate(); err != nil {
		return "", err
	}
	if err := checkOutgoing(m); err != nil {
		return "", err
	}
	r, err := randField(rnd)
	if err != nil {
		return "", err
	}
	m.Addr = m.Addr.Unmap()
	return seal(keys, []byte(formatPlaintext(m, r, now.Unix())), rnd)
}

func checkOutgoing(m Message) error {
	if !printable(m.User) {
		return errors.New("user name must be printable ASCII")
	}
	if !m.Addr.IsValid() || m.Addr.Zone() != "" {
		return errors.New("no address to ask access for (0.0.0.0 means the packet's source)")
	}
	if len(m.Access) == 0 {
		return errors.New("no proto/port to ask for")
	}
	for _, a := range m.Access {
		if _, err := ParseAccess(a.String()); err != nil {
			return err
		}
	}
	switch m.Type {
	case TypeAccess:
		if m.ClientTimeout != 0 {
			return errors.New("a client timeout needs TypeClientTimeoutAccess")
		}
	case TypeClientTimeoutAccess:
		s := m.ClientTimeout / time.Second
		if s <= 0 || m.ClientTimeout%time.Second != 0 || s > 1<<32-1 {
			return fmt.Errorf("client timeout %v: want whole seconds, at least 1s", m.ClientTimeout)
		}
	default:
		return fmt.Errorf("message type %d: only access (1) and access with timeout (3) are sent", m.Type)
	}
	return nil
}

// randField makes RAND: 16 decimal digits, the first not 0, as the fwknop
// client's look.
func randField(rnd io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	const lo, span = 1_000_000_000_000_000, 9_000_000_000_000_000
	n := lo + binary.BigEndian.Uint64(b[:])%span
	return strconv.FormatUint(n, 10), nil
}

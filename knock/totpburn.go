package knock

import (
	"cmp"
	"slices"
)

// Burn is a TOTP sequence that opened: door, client and step counter. It
// stays refused, from any address, until its window has passed.
type Burn struct {
	Door, Client string
	Counter      uint64
}

// Burns returns the sequences burned now, sorted, for the daemon to keep
// across restarts.
func (m *TOTPMatcher) Burns() []Burn {
	out := make([]Burn, 0, len(m.burned))
	for k := range m.burned {
		out = append(out, Burn{Door: k.door, Client: k.client, Counter: k.ctr})
	}
	slices.SortFunc(out, func(a, b Burn) int {
		return cmp.Or(cmp.Compare(a.Door, b.Door), cmp.Compare(a.Client, b.Client), cmp.Compare(a.Counter, b.Counter))
	})
	return out
}

// Restore marks bs burned, as read back after a restart, so that a
// sequence used before the restart stays refused. Burns of doors or
// clients that are gone, and burns whose window has passed, are forgotten
// at the next hit.
func (m *TOTPMatcher) Restore(bs []Burn) {
	for _, b := range bs {
		m.burned[burnKey{door: b.Door, client: b.Client, ctr: b.Counter}] = struct{}{}
	}
	m.built = false // rebuild the candidates with their burned flags
}

// Unburn gives back a sequence that opened but whose grant did not land
// (the kernel refused it): it is accepted again within its window. The
// daemon calls it after the grant failed, so a burn holds from the Open
// decision until the grant is known to have failed.
func (m *TOTPMatcher) Unburn(b Burn) {
	delete(m.burned, burnKey{door: b.Door, client: b.Client, ctr: b.Counter})
	for i := range m.cands {
		c := &m.cands[i]
		if d := m.doors[c.door]; c.ctr == b.Counter && d.Name == b.Door && d.Clients[c.client].Name == b.Client {
			c.burned = false
		}
	}
}

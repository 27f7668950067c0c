package nft

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// Grant opens ports of a door for one source address for TTL, in the
// door's set of its kind (a local kind: Open, Pending or Manual); the
// kernel expires it. With Forward, the door's forward targets are granted
// too, in its forward set of the same kind, in the same transaction.
type Grant struct {
	Src     netip.Addr
	Door    string // names the door's sets; also the elements' comment
	Kind    Kind
	Ports   []policy.PortProto // may be empty with Forward (a door with only forward)
	Forward bool
	TTL     time.Duration
	// Comment is the elements' comment; "" means the door's name. A fleet
	// grant names its origin there ("fleet:DOOR:ORIGIN:ID").
	Comment string
}

// Revoke closes ports of a door for one source address before their grant
// expires: in the door's open and pending sets, and with Manual also in its
// manual set (`sesame revoke`; a close sequence leaves manual grants).
type Revoke struct {
	Src     netip.Addr
	Door    string
	Ports   []policy.PortProto
	Manual  bool
	Forward bool // also the door's forward grants of those kinds
}

// Element is one grant as the kernel holds it.
type Element struct {
	Addr    netip.Addr
	Port    policy.PortProto // zero for a forward grant (Kind.Forward): it opens all the door's targets
	Door    string           // from the set's name
	Kind    Kind
	Timeout time.Duration // the grant's length
	Expires time.Duration // time left
	Comment string        // the element's comment (Grant.Comment or the door's name)
}

// elemKey encodes addr . proto . port as the kernel stores a concatenated
// key: each field padded to a multiple of 4 bytes, the port big-endian.
func elemKey(a netip.Addr, pp policy.PortProto) []byte {
	k := make([]byte, 0, 24)
	if a.Is4() {
		b := a.As4()
		k = append(k, b[:]...)
	} else {
		b := a.As16()
		k = append(k, b[:]...)
	}
	return append(k, portKey(pp)...)
}

// addrKey encodes a forward grant's key: the source address alone.
func addrKey(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

// portKey encodes proto . port (the guarded set's key, the tail of a grant
// key): the protocol byte and the big-endian port, each padded to 4 bytes.
func portKey(pp policy.PortProto) []byte {
	return []byte{byte(pp.Proto), 0, 0, 0, byte(pp.Port >> 8), byte(pp.Port), 0, 0}
}

// parseKey decodes a grant set key back into address, protocol and port.
func parseKey(k []byte) (netip.Addr, policy.PortProto, error) {
	var a netip.Addr
	switch len(k) {
	case 4: // a forward grant: the address alone
		return netip.AddrFrom4([4]byte(k)), policy.PortProto{}, nil
	case 16:
		return netip.AddrFrom16([16]byte(k)), policy.PortProto{}, nil
	case 12:
		a = netip.AddrFrom4([4]byte(k[:4]))
	case 24:
		a = netip.AddrFrom16([16]byte(k[:16]))
	default:
		return netip.Addr{}, policy.PortProto{}, fmt.Errorf("grant key of %d bytes: want 4, 12, 16 or 24", len(k))
	}
	r := k[len(k)-8:]
	return a, policy.PortProto{Proto: policy.Proto(r[0]), Port: binary.BigEndian.Uint16(r[4:6])}, nil
}

// maxComment bounds an element comment (the kernel keeps at most 256
// bytes of element userdata).
const maxComment = 250

// checkGrant validates one grant before anything is sent.
func checkGrant(g *Grant) error {
	switch {
	case !g.Src.IsValid():
		return invalid("grant: invalid source address")
	case g.TTL < time.Millisecond:
		return invalid("grant %s: ttl %v: want at least 1ms", g.Src, g.TTL)
	case len(g.Door) > maxComment:
		return invalid("grant %s: door name of %d bytes: want at most %d", g.Src, len(g.Door), maxComment)
	case len(g.Comment) > maxComment:
		return invalid("grant %s: comment of %d bytes: want at most %d", g.Src, len(g.Comment), maxComment)
	case !validDoor(g.Door):
		return invalid("grant %s: %q is not a door name", g.Src, g.Door)
	case int(g.Kind) >= len(setPrefix) || g.Kind.Forward():
		return invalid("grant %s: unknown kind %v", g.Src, g.Kind)
	}
	return nil
}

// group is the grants of one source address in one set: they share keys
// (a later grant of a key wins), so they land or fail together.
type group struct {
	grants []int  // indexes into Apply's grants
	adds   []elem // with timeout and comment, one per key
}

// setPlan is what one Apply writes to one set.
type setPlan struct {
	name    string
	revokes []int  // indexes into Apply's revokes that touch this set
	dels    []elem // their keys, each once
	groups  []*group
	err     error // why the set's part of the whole transaction failed
}

// keysOf returns the keys the groups add.
func keysOf(gs []*group) []elem {
	var out []elem
	for _, g := range gs {
		for _, e := range g.adds {
			out = append(out, elem{key: e.key})
		}
	}
	return out
}

// plan sorts grants and revokes into the sets they touch (4-in-6 mapped
// sources count as IPv4), in first-touched order. exists says whether the
// table has a set; grants to a missing set fail at once (in grantErrs),
// revokes skip it (nothing to revoke there).
func plan(grants []Grant, revokes []Revoke, exists func(string) bool, grantErrs []error) []*setPlan {
	var sets []*setPlan
	byName := map[string]*setPlan{}
	get := func(name string) *setPlan {
		sp := byName[name]
		if sp == nil {
			sp = &setPlan{name: name}
			byName[name] = sp
			sets = append(sets, sp)
		}
		return sp
	}
	seenDel := map[string]bool{}
	for i, r := range revokes {
		src := r.Src.Unmap()
		kinds := []Kind{Open, Pending}
		if r.Manual {
			kinds = append(kinds, Manual)
		}
		if r.Forward {
			for _, k := range kinds {
				kinds = append(kinds, k.forward())
			}
		}
		for _, k := range kinds {
			name := grantSetName(k, src, r.Door)
			if !exists(name) {
				continue
			}
			sp := get(name)
			sp.revokes = append(sp.revokes, i)
			for _, key := range grantKeys(k, src, r.Ports) {
				if id := name + "\x00" + string(key); !seenDel[id] {
					seenDel[id] = true
					sp.dels = append(sp.dels, elem{key: key})
				}
			}
		}
	}
	type gkey struct {
		set string
		src netip.Addr
	}
	groups := map[gkey]*group{}
	for i := range grants {
		g := &grants[i]
		if grantErrs[i] != nil {
			continue
		}
		src := g.Src.Unmap()
		var kinds []Kind
		if len(g.Ports) > 0 || !g.Forward {
			kinds = append(kinds, g.Kind)
		}
		if g.Forward {
			kinds = append(kinds, g.Kind.forward())
		}
		for _, k := range kinds {
			name := grantSetName(k, src, g.Door)
			if !exists(name) {
				grantErrs[i] = invalid("grant %s: no set %s in the table: is the daemon running a config with door %q?", src, name, g.Door)
				break
			}
		}
		if grantErrs[i] != nil {
			continue
		}
		for _, k := range kinds {
			name := grantSetName(k, src, g.Door)
			sp := get(name)
			gr := groups[gkey{name, src}]
			if gr == nil {
				gr = &group{}
				groups[gkey{name, src}] = gr
				sp.groups = append(sp.groups, gr)
			}
			gr.grants = append(gr.grants, i)
		next:
			for _, key := range grantKeys(k, src, g.Ports) {
				e := elem{key: key, timeout: g.TTL, comment: cmp.Or(g.Comment, g.Door)}
				for j := range gr.adds {
					if string(gr.adds[j].key) == string(e.key) {
						gr.adds[j] = e
						continue next
					}
				}
				gr.adds = append(gr.adds, e)
			}
		}
	}
	return sets
}

// grantKeys returns the keys of a grant of ports for src in a set of kind
// k: one per port, or for a forward kind the address alone.
func grantKeys(k Kind, src netip.Addr, ports []policy.PortProto) [][]byte {
	if k.Forward() {
		return [][]byte{addrKey(src)}
	}
	out := make([][]byte, len(ports))
	for i, pp := range ports {
		out[i] = elemKey(src, pp)
	}
	return out
}

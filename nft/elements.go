package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/sesame-knock/sesame/policy"
)

// Grant opens ports for one source address for TTL; the kernel expires it.
type Grant struct {
	Src   netip.Addr
	Door  string // the element's comment
	Ports []policy.PortProto
	TTL   time.Duration
}

// Revoke closes ports for one source address before their grant expires.
type Revoke struct {
	Src   netip.Addr
	Ports []policy.PortProto
}

// Element is one grant as the kernel holds it.
type Element struct {
	Addr    netip.Addr
	Port    policy.PortProto
	Door    string
	Timeout time.Duration // the grant's length
	Expires time.Duration // time left
}

// grantSet returns the set that holds grants for a (4-in-6 unmapped) address.
func grantSet(a netip.Addr) string {
	if a.Is4() {
		return setGrants4
	}
	return setGrants6
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

// portKey encodes proto . port (the guarded set's key, the tail of a grant
// key): the protocol byte and the big-endian port, each padded to 4 bytes.
func portKey(pp policy.PortProto) []byte {
	return []byte{byte(pp.Proto), 0, 0, 0, byte(pp.Port >> 8), byte(pp.Port), 0, 0}
}

// parseKey decodes a grant set key back into address, protocol and port.
func parseKey(k []byte) (netip.Addr, policy.PortProto, error) {
	var a netip.Addr
	switch len(k) {
	case 12:
		a = netip.AddrFrom4([4]byte(k[:4]))
	case 24:
		a = netip.AddrFrom16([16]byte(k[:16]))
	default:
		return netip.Addr{}, policy.PortProto{}, fmt.Errorf("grant key of %d bytes: want 12 or 24", len(k))
	}
	r := k[len(k)-8:]
	return a, policy.PortProto{Proto: policy.Proto(r[0]), Port: binary.BigEndian.Uint16(r[4:6])}, nil
}

// maxComment bounds an element comment (the kernel keeps at most 256
// bytes of element userdata).
const maxComment = 250

// setOps is what Apply writes to one grant set.
type setOps struct {
	adds []elem // with timeout and comment
	dels []elem // keys only
}

// planOps sorts the elements of grants and revokes into the two grant sets
// (4-in-6 mapped sources count as IPv4), without duplicates: a later grant
// of the same key wins. dels holds every key to delete first: the revoked
// ones and, so that a re-grant restarts its timer, the granted ones.
func planOps(grants []Grant, revokes []Revoke) (map[string]*setOps, error) {
	ops := map[string]*setOps{setGrants4: {}, setGrants6: {}}
	addAt := map[string]int{}
	seenDel := map[string]bool{}
	del := func(set string, k []byte) {
		if !seenDel[string(k)] {
			seenDel[string(k)] = true
			ops[set].dels = append(ops[set].dels, elem{key: k})
		}
	}
	for _, r := range revokes {
		if !r.Src.IsValid() {
			return nil, fmt.Errorf("revoke: invalid source address")
		}
		src := r.Src.Unmap()
		for _, pp := range r.Ports {
			del(grantSet(src), elemKey(src, pp))
		}
	}
	for _, g := range grants {
		if !g.Src.IsValid() {
			return nil, fmt.Errorf("grant: invalid source address")
		}
		if g.TTL < time.Millisecond {
			return nil, fmt.Errorf("grant %s: ttl %v: want at least 1ms", g.Src, g.TTL)
		}
		if len(g.Door) > maxComment {
			return nil, fmt.Errorf("grant %s: door name of %d bytes: want at most %d", g.Src, len(g.Door), maxComment)
		}
		src := g.Src.Unmap()
		set := grantSet(src)
		for _, pp := range g.Ports {
			k := elemKey(src, pp)
			del(set, k)
			e := elem{key: k, timeout: g.TTL, comment: g.Door}
			if i, ok := addAt[string(k)]; ok {
				ops[set].adds[i] = e
				continue
			}
			addAt[string(k)] = len(ops[set].adds)
			ops[set].adds = append(ops[set].adds, e)
		}
	}
	return ops, nil
}

package nft

import (
	"net/netip"
	"strconv"
	"strings"
)

// Kind says which of a door's sets holds a grant. Each door has its own
// sets, one per kind and address family, each of the door's max_grants
// elements: a flood of one door's grants never takes the room of another
// door, nor of a manual grant.
type Kind uint8

const (
	// Open holds confirmed grants: a knock on a door without confirm, a
	// confirmed knock (promoted by the kernel from Pending), and TOTP,
	// one-time and SPA grants, which no spoofer can complete.
	Open Kind = iota
	// Pending holds the knocks of a static door with confirm, for
	// confirm_within: the kernel admits new connections from them, and
	// promotes the address into Open once its connection is established.
	// Sesame deletes the oldest pending grants first when the set is full.
	Pending
	// Manual holds `sesame grant` grants: no knock shortens them and no
	// close sequence revokes them.
	Manual
	// FwdOpen, FwdPending and FwdManual are Open, Pending and Manual for
	// a door's forward targets, in the forward chain: one element per
	// source address (the door's targets are granted whole), so that a
	// forward grant never opens a local port and a local grant never
	// opens a forwarded one.
	FwdOpen
	FwdPending
	FwdManual
)

var kindNames = [...]string{"open", "pending", "manual", "open", "pending", "manual"}

// Forward reports whether k is a kind of forward grant.
func (k Kind) Forward() bool { return k >= FwdOpen }

// Local returns the local kind of k (Open for FwdOpen); k itself when it
// is local.
func (k Kind) Local() Kind {
	if k.Forward() {
		return k - FwdOpen
	}
	return k
}

// forward returns the forward kind of local kind k (FwdOpen for Open).
func (k Kind) forward() Kind { return k.Local() + FwdOpen }

// pending reports whether k holds pending grants (Pending, FwdPending).
func (k Kind) pending() bool { return k.Local() == Pending }

// String returns "open", "pending" or "manual", for forward kinds too
// (Element.Kind.Forward tells them apart).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// setPrefix starts the name of a door's set of a kind, before the family
// digit: open4_ssh, pend6_ssh, manual4_ssh, fwd4_app, fpend6_app,
// fmanual4_app. No prefix is a prefix of another.
var setPrefix = [...]string{"open", "pend", "manual", "fwd", "fpend", "fmanual"}

// Legacy set names: before per-door sets (issue 11), every grant lived in
// these two. Ensure moves their elements into the door sets and deletes them.
const (
	legacyGrants4 = "grants4"
	legacyGrants6 = "grants6"
)

// setName names door's set of kind k for an address family. Door names
// (1 to 64 of A-Z a-z 0-9 _ . -) are valid in an nft identifier after the
// prefix, which starts with a letter, so the name needs no quoting (nft
// 1.0.6 refuses quoted set names).
func setName(k Kind, v6 bool, door string) string {
	fam := "4"
	if v6 {
		fam = "6"
	}
	return setPrefix[k] + fam + "_" + door
}

// grantSetName is setName for the family of a (4-in-6 unmapped) address.
func grantSetName(k Kind, a netip.Addr, door string) string {
	return setName(k, !a.Is4(), door)
}

// parseSetName splits a door set's name; ok is false for other names.
func parseSetName(name string) (k Kind, v6 bool, door string, ok bool) {
	for i, p := range setPrefix {
		rest, found := strings.CutPrefix(name, p)
		if !found || len(rest) < 3 || rest[1] != '_' || (rest[0] != '4' && rest[0] != '6') {
			continue
		}
		if door = rest[2:]; !validDoor(door) {
			return 0, false, "", false
		}
		return Kind(i), rest[0] == '6', door, true
	}
	return 0, false, "", false
}

// validDoor reports whether s is a door name as policy allows it.
func validDoor(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

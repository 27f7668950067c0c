package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// Element is one element of a grant set, as `nft -j` shows it. Timeout and
// Expires are whole seconds (nft's JSON rounds down).
type Element struct {
	Set     string // the set it is in, e.g. open4_ssh
	Addr    netip.Addr
	Proto   string // "tcp" or "udp"
	Port    uint16
	Timeout time.Duration
	Expires time.Duration
	Comment string
}

// String returns the nft form, e.g. `198.51.100.2 . tcp . 22 timeout 30s`.
func (e Element) String() string {
	return fmt.Sprintf("%s: %s . %s . %d timeout %s expires %s comment %q", e.Set, e.Addr, e.Proto, e.Port, e.Timeout, e.Expires, e.Comment)
}

// Kind is the kind of grant set the element is in: "open", "pending" or
// "manual" ("" for another set). Each door has its own sets, named
// KIND4_DOOR and KIND6_DOOR (pend4_DOOR for pending); the older layout's
// grants4 and grants6 count as open.
func (e Element) Kind() string {
	k, _ := splitSet(e.Set)
	return k
}

// Door is the door whose set the element is in.
func (e Element) Door() string {
	_, d := splitSet(e.Set)
	return d
}

func splitSet(name string) (kind, door string) {
	if name == "grants4" || name == "grants6" {
		return "open", "" // before per-door sets: every door's grants (door in the comment)
	}
	for _, k := range []struct{ prefix, kind string }{{"open", "open"}, {"pend", "pending"}, {"manual", "manual"}} {
		rest, ok := strings.CutPrefix(name, k.prefix)
		if ok && len(rest) > 2 && (rest[0] == '4' || rest[0] == '6') && rest[1] == '_' {
			return k.kind, rest[2:]
		}
	}
	return "", ""
}

// Grants lists the elements of every grant set (every door's open,
// pending and manual sets) of table inet sesame in ns.
func Grants(ns *nstest.NS) ([]Element, error) {
	out, err := ns.Try("nft", "-j", "list", "table", "inet", "sesame")
	if err != nil {
		return nil, fmt.Errorf("nft list table inet sesame: %w: %s", err, out)
	}
	all, err := ParseNftSet([]byte(out))
	if err != nil {
		return nil, err
	}
	var elems []Element
	for _, e := range all {
		if e.Kind() != "" {
			elems = append(elems, e)
		}
	}
	return elems, nil
}

// FlushGrants empties every grant set of table inet sesame in ns.
func FlushGrants(ns *nstest.NS) error {
	out, err := ns.Try("nft", "-j", "list", "sets", "inet")
	if err != nil {
		return fmt.Errorf("nft list sets: %w: %s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct{ Name, Table string } `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return fmt.Errorf("parse nft json: %w", err)
	}
	var cmds []string
	for _, o := range doc.Nftables {
		if o.Set != nil && o.Set.Table == "sesame" {
			if k, _ := splitSet(o.Set.Name); k != "" {
				cmds = append(cmds, "flush set inet sesame "+o.Set.Name)
			}
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if out, err := ns.Try("nft", strings.Join(cmds, "; ")); err != nil {
		return fmt.Errorf("nft flush: %w: %s", err, out)
	}
	return nil
}

// NftSet lists set name of table inet sesame in ns.
func NftSet(ns *nstest.NS, name string) ([]Element, error) {
	return NftSetIn(ns, "sesame", name)
}

// NftSetIn lists a set of an inet table in ns.
func NftSetIn(ns *nstest.NS, table, name string) ([]Element, error) {
	out, err := ns.Try("nft", "-j", "list", "set", "inet", table, name)
	if err != nil {
		return nil, fmt.Errorf("nft list set inet %s %s: %w: %s", table, name, err, out)
	}
	return ParseNftSet([]byte(out))
}

// ParseNftSet parses the output of `nft -j list set` (or list table) for
// sets of addr . inet_proto . inet_service; other sets are skipped.
func ParseNftSet(js []byte) ([]Element, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Type any               `json:"type"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w", err)
	}
	var elems []Element
	found := false
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		found = true
		if ty, ok := o.Set.Type.([]any); ok && len(ty) != 3 {
			continue // not a grant set (guarded)
		}
		for _, raw := range o.Set.Elem {
			e, err := parseElem(raw)
			if err != nil {
				return nil, err
			}
			e.Set = o.Set.Name
			elems = append(elems, e)
		}
	}
	if !found {
		return nil, fmt.Errorf("no set in nft output: %.200s", js)
	}
	return elems, nil
}

func parseElem(raw json.RawMessage) (Element, error) {
	// An element with a timeout or comment is {"elem": {"val": ..., ...}};
	// a bare one is just the value.
	var wrapped struct {
		Elem *struct {
			Val     json.RawMessage `json:"val"`
			Timeout int64           `json:"timeout"`
			Expires int64           `json:"expires"`
			Comment string          `json:"comment"`
		} `json:"elem"`
	}
	val := raw
	var e Element
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Elem != nil {
		val = wrapped.Elem.Val
		e.Timeout = time.Duration(wrapped.Elem.Timeout) * time.Second
		e.Expires = time.Duration(wrapped.Elem.Expires) * time.Second
		e.Comment = wrapped.Elem.Comment
	}
	var key struct {
		Concat []any `json:"concat"`
	}
	if err := json.Unmarshal(val, &key); err != nil || len(key.Concat) != 3 {
		return e, fmt.Errorf("element %s: want addr . proto . port", raw)
	}
	addr, _ := key.Concat[0].(string)
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return e, fmt.Errorf("element %s: address: %w", raw, err)
	}
	e.Addr = a
	switch p := key.Concat[1].(type) {
	case string:
		e.Proto = strings.ToLower(p)
	case float64:
		e.Proto = map[float64]string{6: "tcp", 17: "udp"}[p]
	}
	if e.Proto == "" {
		return e, fmt.Errorf("element %s: protocol %v", raw, key.Concat[1])
	}
	port, ok := key.Concat[2].(float64)
	if !ok || port < 0 || port > 65535 {
		return e, fmt.Errorf("element %s: port %v", raw, key.Concat[2])
	}
	e.Port = uint16(port)
	return e, nil
}

// Find returns the element for addr . proto . port, if present.
func Find(elems []Element, addr netip.Addr, proto string, port uint16) (Element, bool) {
	for _, e := range elems {
		if e.Addr == addr && e.Proto == proto && e.Port == port {
			return e, true
		}
	}
	return Element{}, false
}

package policy

import (
	"slices"
	"testing"
)

// checkInvariants re-checks, independently of the validator, everything a
// returned Policy promises. A nil Policy passes.
func checkInvariants(t *testing.T, p *Policy) {
	t.Helper()
	if p == nil {
		return
	}
	if !validTable(p.Table) {
		t.Errorf("invalid table %q", p.Table)
	}
	if p.Closed != ClosedDrop && p.Closed != ClosedReject {
		t.Errorf("invalid closed %d", p.Closed)
	}
	ifs := map[string]bool{}
	for _, name := range p.Interfaces {
		if badIfName(name) != "" || ifs[name] {
			t.Errorf("invalid or duplicate interface %q", name)
		}
		ifs[name] = true
	}
	checkFleetInvariants(t, p)
	names := map[string]bool{}
	guarded := map[PortProto]bool{}
	for _, d := range p.Doors {
		for _, pp := range d.Open {
			guarded[pp] = true
		}
	}
	var seqs, closes [][]PortProto
	for _, d := range p.Doors {
		if !validDoorName(d.Name) || names[d.Name] {
			t.Errorf("invalid or duplicate door name %q", d.Name)
		}
		names[d.Name] = true
		if d.TOTP == nil && d.SPA == nil && (d.OneTimeFile == "" || d.Sequence != nil) {
			checkSeq(t, d.Name, "sequence", d.Sequence, guarded)
		}
		if d.CloseSequence != nil {
			checkSeq(t, d.Name, "close_sequence", d.CloseSequence, guarded)
			closes = append(closes, d.CloseSequence)
		}
		if d.Sequence != nil {
			seqs = append(seqs, d.Sequence)
		}
		checkSPA(t, p, &d)
		if len(d.Open) == 0 {
			t.Errorf("door %q opens nothing", d.Name)
		}
		seen := map[PortProto]bool{}
		for _, pp := range d.Open {
			checkPort(t, d.Name, pp)
			if seen[pp] {
				t.Errorf("door %q opens %s twice", d.Name, pp)
			}
			seen[pp] = true
		}
		if d.SeqTimeout < MinSeqTimeout || d.SeqTimeout > MaxSeqTimeout {
			t.Errorf("door %q seq_timeout %s out of bounds", d.Name, d.SeqTimeout)
		}
		if d.OpenFor < MinOpenFor || d.OpenFor > MaxOpenFor {
			t.Errorf("door %q open_for %s out of bounds", d.Name, d.OpenFor)
		}
		if d.MaxGrants < MinMaxGrants || d.MaxGrants > MaxMaxGrants {
			t.Errorf("door %q max_grants %d out of bounds", d.Name, d.MaxGrants)
		}
		if d.Confirm != (d.ConfirmWithin != 0) || d.Confirm && (!d.Static() || d.ConfirmWithin < MinConfirm || d.ConfirmWithin > d.OpenFor) {
			t.Errorf("door %q confirm %v within %s: want it only on a static door, within 1s..open_for", d.Name, d.Confirm, d.ConfirmWithin)
		}
		if d.TCPFlags.Mask == 0 || d.TCPFlags.Want&^d.TCPFlags.Mask != 0 {
			t.Errorf("door %q tcp flags %+v invalid", d.Name, d.TCPFlags)
		}
	}
	for i := range seqs {
		for j := range seqs {
			if i < j && slices.Equal(seqs[i], seqs[j]) {
				t.Errorf("two doors share sequence %s", FormatPorts(seqs[i]))
			}
		}
	}
	for i, c := range closes {
		for _, s := range seqs {
			if slices.Equal(c, s) {
				t.Errorf("close sequence %s equals a sequence", FormatPorts(c))
			}
		}
		for j := range closes {
			if i < j && slices.Equal(c, closes[j]) {
				t.Errorf("two doors share close sequence %s", FormatPorts(c))
			}
		}
	}
	for _, k := range p.KnockPorts() {
		if slices.Contains(p.Guarded(), k) {
			t.Errorf("knock port %s is guarded", k)
		}
	}
}

func checkSeq(t *testing.T, door, what string, seq []PortProto, guarded map[PortProto]bool) {
	t.Helper()
	if len(seq) < 1 || len(seq) > MaxSequence {
		t.Errorf("door %q %s has %d steps", door, what, len(seq))
	}
	for i, pp := range seq {
		checkPort(t, door, pp)
		if i > 0 && seq[i-1] == pp {
			t.Errorf("door %q %s repeats %s", door, what, pp)
		}
		if guarded[pp] {
			t.Errorf("door %q %s uses guarded port %s", door, what, pp)
		}
	}
}

func checkPort(t *testing.T, door string, pp PortProto) {
	t.Helper()
	if pp.Port == 0 || (pp.Proto != TCP && pp.Proto != UDP) {
		t.Errorf("door %q has invalid port %+v", door, pp)
	}
}

// checkSPA checks an SPA door: bounds, clients with valid keys, and a port
// that no other door uses.
func checkSPA(t *testing.T, p *Policy, d *Door) {
	t.Helper()
	if d.SPA == nil {
		return
	}
	s := d.SPA
	if s.Port == 0 || s.MaxAge < MinSPAMaxAge || s.MaxAge > MaxSPAMaxAge || s.MaxOpenFor < d.OpenFor || s.MaxOpenFor > MaxOpenFor {
		t.Errorf("door %q spa %+v out of bounds", d.Name, s)
	}
	if d.Sequence != nil || d.TOTP != nil || d.OneTimeFile != "" || d.CloseSequence != nil {
		t.Errorf("SPA door %q has another kind too", d.Name)
	}
	for _, c := range d.Clients {
		if c.Keys.Validate() != nil || c.Secret != nil {
			t.Errorf("SPA door %q client %q: bad keys", d.Name, c.Name)
		}
	}
	spaPort := PortProto{Port: s.Port, Proto: UDP}
	if slices.Contains(p.Guarded(), spaPort) || slices.Contains(p.KnockPorts(), spaPort) {
		t.Errorf("SPA door %q port %d is guarded or a knock port", d.Name, s.Port)
	}
	for _, o := range p.Doors {
		if o.Name != d.Name && o.SPA != nil && o.SPA.Port == s.Port {
			t.Errorf("doors %q and %q share SPA port %d", d.Name, o.Name, s.Port)
		}
	}
}

// checkFleetInvariants: a fleet block has valid names, distinct groups
// and one or more servers, and every door's fleet_groups are distinct
// groups of it (none without a fleet block).
func checkFleetInvariants(t *testing.T, p *Policy) {
	t.Helper()
	f := p.Fleet
	if f != nil {
		if !ValidFleetName(f.Name) || !ValidFleetName(f.Member) || f.KeyFile == "" || f.MembersFile == "" ||
			len(f.Servers) == 0 || f.MaxSkew < MinMaxSkew || f.MaxSkew > MaxMaxSkew || len(f.Groups) == 0 {
			t.Errorf("invalid fleet %+v", f)
		}
		for i, g := range f.Groups {
			if !ValidFleetName(g) || slices.Index(f.Groups, g) != i {
				t.Errorf("invalid or duplicate fleet group %q", g)
			}
		}
	}
	for _, d := range p.Doors {
		if d.FleetGroups != nil && (f == nil || len(d.FleetGroups) == 0) {
			t.Errorf("door %q: fleet_groups %q without a fleet block", d.Name, d.FleetGroups)
		}
		for i, g := range d.FleetGroups {
			if f != nil && !slices.Contains(f.Groups, g) || slices.Index(d.FleetGroups, g) != i {
				t.Errorf("door %q: fleet group %q not in the fleet's groups, or twice", d.Name, g)
			}
		}
	}
}

package policy

// crossDoors runs the checks that involve more than one door (or a door's
// sequence against its own close sequence). Ports not ok are skipped: their
// errors are already reported. Lookups go through maps keyed by the
// sequence's config form, so a config with many doors stays linear.
func (v *validator) crossDoors(ds []doorSrc) {
	seqs := make(map[string]*doorSrc)   // sequence → first door with it
	closes := make(map[string]*doorSrc) // close_sequence → first door with it
	for i := range ds {
		d := &ds[i]
		if !d.seq.ok {
			continue
		}
		k := FormatPorts(d.seq.pp)
		if a, dup := seqs[k]; dup {
			v.add(errorf(d.seq.expr, "Duplicate knock sequence", "Door %q (%s) has the same sequence %s; each door needs its own sequence.", a.name, pos(a.seq.expr), k))
			continue
		}
		seqs[k] = d
	}
	for i := range ds {
		d := &ds[i]
		if !d.close.ok {
			continue
		}
		k := FormatPorts(d.close.pp)
		if a, dup := seqs[k]; dup {
			v.add(errorf(d.close.expr, "Close sequence equals a knock sequence", "This close_sequence is the sequence of door %q (%s): one knock cannot both open and close. Use a different close_sequence.", a.name, pos(a.seq.expr)))
		}
		if a, dup := closes[k]; dup {
			v.add(errorf(d.close.expr, "Duplicate close sequence", "Door %q (%s) has the same close_sequence %s; each door needs its own.", a.name, pos(a.close.expr), k))
			continue
		}
		closes[k] = d
	}
	v.prefixes(ds, seqs)
	v.knockNotGuarded(ds)
}

// prefixes warns when a door's sequence starts with another door's whole
// sequence: knocking the longer one opens the shorter one on the way.
func (v *validator) prefixes(ds []doorSrc, seqs map[string]*doorSrc) {
	for _, b := range ds {
		if !b.seq.ok {
			continue
		}
		for n := 1; n < len(b.seq.pp); n++ {
			if a, ok := seqs[FormatPorts(b.seq.pp[:n])]; ok {
				v.add(warnf(b.seq.expr, "Sequence starts with another door's sequence", "It starts with the whole sequence of door %q (%s), so knocking door %q also opens door %q.", a.name, pos(a.seq.expr), b.name, a.name))
			}
		}
	}
}

// knockNotGuarded rejects a knock step that some door opens: connections to
// a guarded service would count as knocks, and the table guards that port.
func (v *validator) knockNotGuarded(ds []doorSrc) {
	type opener struct {
		door string
		at   string
	}
	guarded := make(map[PortProto]opener)
	for _, d := range ds {
		if !d.open.ok {
			continue
		}
		for i, pp := range d.open.pp {
			if _, dup := guarded[pp]; !dup {
				guarded[pp] = opener{d.name, pos(d.open.rngs[i])}
			}
		}
	}
	check := func(name string, ps ports) {
		if !ps.ok {
			return
		}
		for i, pp := range ps.pp {
			if o, bad := guarded[pp]; bad {
				v.add(errorf(ps.rngs[i], "Knock port is a guarded port", "%s in %s is opened by door %q (%s): a guarded service port cannot be a knock port, since the table guards it and every connection to it would count as a knock. Use a port that no door opens.", pp, name, o.door, o.at))
			}
		}
	}
	for _, d := range ds {
		check("sequence", d.seq)
		check("close_sequence", d.close)
	}
}

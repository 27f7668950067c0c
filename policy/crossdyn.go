package policy

// dynamicNotGuarded extends the rule that a knock port is never a guarded
// port to the doors whose knock ports come from elsewhere: a TOTP door's
// port range may not hold a port that another door opens (its own door's
// ports are checked with the range itself), and no step of a one-time
// sequence may be a port that any door opens. Otherwise connections to a
// guarded service would count as knocks.
func (v *validator) dynamicNotGuarded(raw *rawConfig, p *Policy) {
	if len(raw.Doors) != len(p.Doors) {
		return
	}
	type opener struct {
		door string
		idx  int
	}
	guarded := make(map[PortProto]opener)
	for i, d := range p.Doors {
		for _, pp := range d.Open {
			if _, dup := guarded[pp]; !dup {
				guarded[pp] = opener{d.Name, i}
			}
		}
	}
	for i := range p.Doors {
		d, rd := &p.Doors[i], &raw.Doors[i]
		if t := d.TOTP; t != nil && len(rd.TOTP) > 0 {
			r := PortRange{Lo: t.Lo, Hi: t.Hi, Proto: t.Proto}
			for pp, o := range guarded {
				if o.idx != i && r.Contains(pp) {
					v.add(errorf(rd.TOTP[0].DefRange, "TOTP range holds a guarded port", "port_range %d-%d/%s contains %s, which door %q opens: a connection to it would count as a knock. Move the range.", t.Lo, t.Hi, t.Proto, pp, o.door))
					break
				}
			}
		}
		if rd.OneTime == nil {
			continue
		}
	lines:
		for _, s := range d.OneTime {
			for _, pp := range s.Steps {
				if o, bad := guarded[pp]; bad {
					v.add(errorf(rd.OneTime.Expr.Range(), "One-time sequence uses a guarded port", "Line %d of %s knocks on %s, which door %q opens: a guarded service port cannot be a knock port, since every connection to it would count as a knock. Use a port that no door opens.", s.Line, d.OneTimeFile, pp, o.door))
					break lines
				}
			}
		}
	}
}

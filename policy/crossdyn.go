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
		switch d.Kind() {
		case KindTOTP:
			v.totpNotGuarded(rd, d, i, guarded)
		case KindOneTime:
			v.oneTimeNotGuarded(rd, d, guarded)
		case KindStatic, KindSPA: // cross.go and spaCross
		}
	}
}

// opener is the door that opens a guarded port, and its index.
type opener struct {
	door string
	idx  int
}

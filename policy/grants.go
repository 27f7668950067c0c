package policy

import (
	"github.com/hashicorp/hcl/v2"
)

// grantAttrs validates max_grants, confirm and confirm_within; it runs once
// the door's kind and open_for are known.
func (v *validator) grantAttrs(rd *rawDoor, d *Door) {
	d.MaxGrants = DefaultMaxGrants
	if rd.MaxGrants != nil {
		if n, ok := v.integer(rd.MaxGrants, MinMaxGrants, MaxMaxGrants); ok {
			d.MaxGrants = n
		}
	}
	if !d.Static() {
		for _, a := range []*hcl.Attribute{rd.Confirm, rd.ConfirmWithin} {
			if a != nil {
				v.add(errorf(a.NameRange, a.Name+" on a door without a fixed sequence", "Door %q is a TOTP, SPA or one-time door: nobody can complete its knock from a spoofed address, so it grants at once and takes no %s. Remove it.", rd.Name, a.Name))
			}
		}
		return
	}
	d.Confirm = true
	if rd.Confirm != nil {
		if b, ok := v.boolean(rd.Confirm); ok {
			d.Confirm = b
		}
	}
	if !d.Confirm {
		if rd.ConfirmWithin != nil {
			v.add(errorf(rd.ConfirmWithin.NameRange, "confirm_within with confirm = false", "Door %q grants at once (confirm = false), so there is nothing to confirm within a time. Remove confirm_within, or confirm = false.", rd.Name))
		}
		return
	}
	def := min(DefaultConfirm, d.OpenFor)
	w, ok := v.duration(rd.ConfirmWithin, def, MinConfirm, MaxOpenFor)
	switch {
	case !ok:
		w = def
	case w > d.OpenFor:
		v.add(errorf(rd.ConfirmWithin.Expr.Range(), "confirm_within above open_for", "confirm_within is %s but open_for is %s: a knock that is not yet confirmed cannot last longer than a grant. Lower confirm_within or raise open_for.", fmtDur(w), fmtDur(d.OpenFor)))
		w = def
	}
	d.ConfirmWithin = w
}

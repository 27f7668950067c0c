package capture

import (
	"slices"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// wantSet is the filter's rule (Filter) in user space, for the packets the
// kernel passes without deciding: IPv6 packets with extension headers, and
// packets queued under the previous filter for a moment after SetPolicy.
// It is immutable once built.
type wantSet struct {
	tcp []policy.TCPFlags // bare SYN (DefaultTCPFlags) first, then the doors' other filters
	udp bool              // every UDP datagram (some door has a UDP step)
	spa [65536 / 64]uint64
}

// newWantSet returns the rule for p: policy.KnockTraffic, bare SYNs, and
// the SPA ports.
func newWantSet(p *policy.Policy) *wantSet {
	kt := p.KnockTraffic()
	w := &wantSet{udp: kt.UDP, tcp: []policy.TCPFlags{policy.DefaultTCPFlags}}
	for _, f := range kt.TCP {
		if !slices.Contains(w.tcp, f) {
			w.tcp = append(w.tcp, f)
		}
	}
	for _, port := range p.SPAPorts() {
		w.spa[port/64] |= 1 << (port % 64)
	}
	return w
}

// wanted reports whether the filter passes h, and clears h.Payload unless h
// is UDP to an SPA port: only SPA requests carry a payload out of ReadHit.
func (w *wantSet) wanted(h *knock.Hit) bool {
	switch h.Proto {
	case policy.TCP:
		h.Payload = nil
		for _, f := range w.tcp {
			if f.Match(h.Flags) {
				return true
			}
		}
	case policy.UDP:
		if w.spa[h.Port/64]&(1<<(h.Port%64)) != 0 {
			return true
		}
		h.Payload = nil
		return w.udp
	}
	return false
}

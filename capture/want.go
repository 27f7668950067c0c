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
	// spaSocket: the rule of an SPA socket (OpenSPA, SPAFilter), which
	// passes UDP to the SPA ports only; a knock socket drops those.
	spaSocket bool
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

// newSPAWantSet returns the rule of an SPA socket for p: UDP to its SPA
// ports.
func newSPAWantSet(p *policy.Policy) *wantSet {
	w := &wantSet{spaSocket: true}
	for _, port := range p.SPAPorts() {
		w.spa[port/64] |= 1 << (port % 64)
	}
	return w
}

func (w *wantSet) isSPA(h *knock.Hit) bool {
	return h.Proto == policy.UDP && w.spa[h.Port/64]&(1<<(h.Port%64)) != 0
}

// wanted reports whether the filter passes h. Only an SPA socket's hits,
// UDP to an SPA port, keep their Payload: a knock socket drops those (they
// are the SPA socket's) and clears the payload of every other hit.
func (w *wantSet) wanted(h *knock.Hit) bool {
	if w.spaSocket {
		if w.isSPA(h) {
			return true
		}
		h.Payload = nil
		return false
	}
	switch h.Proto {
	case policy.TCP:
		h.Payload = nil
		for _, f := range w.tcp {
			if f.Match(h.Flags) {
				return true
			}
		}
	case policy.UDP:
		h.Payload = nil
		return w.udp && !w.isSPA(h)
	}
	return false
}

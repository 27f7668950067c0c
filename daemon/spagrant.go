package daemon

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

// Refusal reasons of the loop's own checks, beside spa's.
const (
	reasonPortsNotAllowed = "ports-not-allowed" // asks for a port the door does not open, or icmp/none
	reasonOtherIP         = "other-ip"          // embedded address differs from the source; allow_other_ip is off
	reasonBadTarget       = "bad-target"        // embedded address is multicast, loopback or the like
)

// spaGrant checks an accepted request against its door and queues the
// grant: the requested ports must lie within the door's open, the address
// is the packet's source (an embedded other address only with
// allow_other_ip), and a client timeout is capped by max_open_for.
func (l *loop) spaGrant(r spaRequest) {
	d, m := r.door, r.msg
	ports := make([]policy.PortProto, 0, len(m.Access))
	for _, a := range m.Access {
		proto, err := policy.ParseProto(a.Proto)
		pp := policy.PortProto{Port: a.Port, Proto: proto}
		if err != nil || !slices.Contains(d.Open, pp) {
			l.spaRefused(r, reasonPortsNotAllowed, "asked", a.String(), "open", policy.FormatPorts(d.Open))
			return
		}
		if !slices.Contains(ports, pp) {
			ports = append(ports, pp)
		}
	}
	src := r.src.Unmap()
	target := m.Target(src).Unmap()
	if target != src {
		if !r.client.AllowOtherIP {
			l.spaRefused(r, reasonOtherIP, "addr", target.String())
			return
		}
		if !target.IsGlobalUnicast() && !target.IsPrivate() {
			l.spaRefused(r, reasonBadTarget, "addr", target.String())
			return
		}
	}
	ttl := d.OpenFor
	if m.Type == spa.TypeClientTimeoutAccess && m.ClientTimeout > 0 {
		ttl = min(max(m.ClientTimeout, time.Second), d.SPA.MaxOpenFor)
	}
	attrs := []any{"door", d.Name, "src", src.String(), "client", r.client.Name, "ports", policy.FormatPorts(ports), "for", ttl.String(), "via", "spa"}
	if target != src {
		attrs = append(attrs, "addr", target.String(), "note", "embedded address granted (allow_other_ip)")
	}
	if m.ClientTimeout > d.SPA.MaxOpenFor {
		attrs = append(attrs, "asked_for", m.ClientTimeout.String())
	}
	// Logged and counted once it lands (settle).
	if len(d.Forward) > 0 {
		attrs = append(attrs, "forward", policy.FormatTargets(d.Forward))
	}
	l.queue(nft.Grant{Src: target, Door: d.Name, Kind: nft.Open, Ports: ports, Forward: len(d.Forward) > 0, TTL: ttl},
		queued{spa: attrs, hook: l.hookFor("open", d, d.OnOpen, target.String()),
			pub: l.fleetPubFor(d, target, ports, ttl, fleet.SPABurn(r.key))})
}

// spaRefused logs and counts a refusal of the loop's own checks. These
// come only from holders of a client's keys, so they are not rate-limited;
// but the packet may be a copy resent from a forged source, so src is
// spoofable.
func (l *loop) spaRefused(r spaRequest, reason string, kv ...any) {
	if l.spa != nil {
		l.spa.met.refused.WithLabelValues(reason).Inc()
	}
	attrs := append([]any{"door", r.door.Name, "src", r.src.String(), "client", r.client.Name, "reason", reason}, kv...)
	attrs = append(attrs, "spoofable", true)
	l.log.Log(context.Background(), slog.LevelWarn, logevent.SPARefused, attrs...)
}

// spaRequests is the channel of accepted SPA requests, or nil (which
// blocks forever in a select) without SPA.
func (l *loop) spaRequests() <-chan spaRequest {
	if l.spa == nil {
		return nil
	}
	return l.spa.out
}

package policy

import (
	"net/netip"

	"github.com/hashicorp/hcl/v2"
)

const allowMetrics = `an IP address and port such as "127.0.0.1:9813" or "[::1]:9813"`

// metricsListen validates metrics_listen: a literal address and a non-zero
// port. A non-loopback address gets a warning: the endpoint has no
// authentication.
func (v *validator) metricsListen(attr *hcl.Attribute) string {
	s, ok := v.str(attr, allowMetrics)
	if !ok {
		return ""
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		v.add(errorf(attr.Expr.Range(), "Invalid metrics_listen", "%q is not a listen address: metrics_listen is %s (a host name is not accepted).", s, allowMetrics))
		return ""
	}
	if !ap.Addr().IsLoopback() {
		v.add(warnf(attr.Expr.Range(), "Metrics reachable from the network", "The metrics endpoint at %s has no authentication; prefer a loopback address, or restrict access in your firewall.", ap))
	}
	return ap.String()
}

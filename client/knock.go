// Package client sends what sesame's doors listen for: a knock sequence
// (one TCP SYN or UDP datagram per step, knockd's knock(1) on the wire),
// the current sequence of a TOTP door, or one fwknop-compatible SPA
// packet; and it waits for a guarded port to open. `sesame knock` and the
// benchmark (bench/) use it; the command line lives in cmd/sesame.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/policy"
)

// Resolve turns host into one address: a literal as it is, a name through
// the resolver, keeping the first address of the wanted family (0 for any,
// 4 or 6), like knockd's getaddrinfo.
func Resolve(ctx context.Context, host string, family int) (netip.Addr, error) {
	network := map[int]string{0: "ip", 4: "ip4", 6: "ip6"}[family]
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if (family == 4 && !a.Is4()) || (family == 6 && !a.Is6()) {
			return netip.Addr{}, fmt.Errorf("host %s is not an IPv%d address", host, family)
		}
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve host %s: %w", host, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if family == 0 || (family == 4) == a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("resolve host %s: no %s address", host, network)
}

// HitError is a knock step that could not be sent.
type HitError struct {
	Step policy.PortProto
	Err  error
}

func (e *HitError) Error() string { return fmt.Sprintf("hit %s: %v", e.Step, e.Err) }
func (e *HitError) Unwrap() error { return e.Err }

// Knock sends steps to addr in order, gap apart. Before each hit it calls
// onHit when that is not nil. A step that cannot be sent ends the knock
// with a *HitError.
func Knock(addr netip.Addr, steps []policy.PortProto, gap time.Duration, onHit func(policy.PortProto)) error {
	for i, step := range steps {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if onHit != nil {
			onHit(step)
		}
		if err := Hit(addr, step); err != nil {
			return &HitError{Step: step, Err: err}
		}
	}
	return nil
}

// Hit sends one packet to addr at step: for TCP a single SYN (a
// non-blocking connect, closed at once, so the kernel never retransmits
// and no RST follows), for UDP a one-byte datagram. A closed TCP port that
// answers at once (loopback) is no error: the SYN was delivered.
func Hit(addr netip.Addr, step policy.PortProto) error {
	sa, family, err := sockaddr(addr, step.Port)
	if err != nil {
		return err
	}
	typ := unix.SOCK_STREAM
	if step.Proto == policy.UDP {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open socket: %w", err)
	}
	defer unix.Close(fd)
	if step.Proto == policy.UDP {
		if err := unix.Sendto(fd, []byte{0}, 0, sa); err != nil {
			return fmt.Errorf("send datagram: %w", err)
		}
		return nil
	}
	switch err := unix.Connect(fd, sa); {
	case err == nil, errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.ECONNREFUSED):
		return nil
	default:
		return fmt.Errorf("connect: %w", err)
	}
}

// sockaddr converts addr and port into a unix socket address and family;
// an IPv6 zone is an interface name or index.
func sockaddr(addr netip.Addr, port uint16) (unix.Sockaddr, int, error) {
	if addr.Is4() {
		return &unix.SockaddrInet4{Port: int(port), Addr: addr.As4()}, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: int(port), Addr: addr.As16()}
	if z := addr.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			n, perr := strconv.Atoi(z)
			if perr != nil {
				return nil, 0, fmt.Errorf("zone of %s: %w", addr, err)
			}
			sa.ZoneId = uint32(n)
		} else {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, unix.AF_INET6, nil
}

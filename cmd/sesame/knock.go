package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/policy"
)

// knockUsage is printed for -h and after a usage error.
const knockUsage = `usage: sesame knock [options] HOST PORT[:PROTO] [PORT[:PROTO]] ...
options:
  -u, --udp          make every port hit use UDP (default TCP); a port's
                     own :tcp or :udp overrides it
  -d, --delay MS     wait MS milliseconds between port hits
  -4, --ipv4         resolve HOST to an IPv4 address only
  -6, --ipv6         resolve HOST to an IPv6 address only
  -v, --verbose      print each hit
      --wait PORT[/tcp]  after knocking, retry a TCP connect to PORT and
                     report whether access was granted (exit status 0 or 1)
      --wait-for DUR how long --wait retries (default 5s, at most 5m)
  -h, --help         this help
  --totp FILE        knock a TOTP door: derive the sequence from the secret
                     in FILE and the time; give HOST only, no ports
  --port-range LO-HI, --length N, --step DURATION, --protocol tcp|udp
                     the door's totp settings (defaults 20000-29999, 4,
                     30s, tcp: the server's defaults)
  --at TIME          derive for TIME (unix seconds or RFC 3339), not now
PORT is 1-65535; PROTO is tcp or udp, written PORT:PROTO or PORT/PROTO.
example: sesame knock server.example.com 7000 8000:udp 9000/tcp
         sesame knock --totp ~/.sesame/alice.key server.example.com
`

// knockOpts is a parsed `sesame knock` command line.
type knockOpts struct {
	Verbose bool
	Delay   time.Duration
	Family  int // 0 (any), 4 or 6
	Host    string
	Steps   []policy.PortProto
	Help    bool
	TOTP    totpOpts      // --totp and its options (totp.go)
	Wait    uint16        // --wait: the TCP port to try after knocking; 0: none
	WaitFor time.Duration // --wait-for
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// parseKnockArgs parses knockd's command line, getopt_long style: short
// flags may be grouped (-uv) and take their value attached or next (-d100,
// -d 100), long flags take --delay=100 or --delay 100, options may come
// anywhere before a "--", and the first operand is the host.
func parseKnockArgs(args []string) (knockOpts, error) {
	var (
		o        knockOpts
		udp      bool
		operands []string
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
			continue
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "udp", "verbose", "ipv4", "ipv6", "help":
				if hasVal {
					return o, usageErrorf("option --%s takes no value", name)
				}
			case "delay", "totp", "port-range", "length", "step", "protocol", "at", "wait", "wait-for":
				if !hasVal {
					if i+1 >= len(args) {
						return o, usageErrorf("option --%s needs a value", name)
					}
					i++
					val = args[i]
				}
			default:
				return o, usageErrorf("unknown option --%s", name)
			}
			if err := o.set(name, val, &udp); err != nil {
				return o, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				name, ok := map[byte]string{'u': "udp", 'v': "verbose", '4': "ipv4", '6': "ipv6", 'h': "help", 'd': "delay"}[a[j]]
				if !ok {
					return o, usageErrorf("unknown option -%c", a[j])
				}
				var val string
				if name == "delay" {
					switch {
					case j+1 < len(a):
						val = a[j+1:]
					case i+1 < len(args):
						i++
						val = args[i]
					default:
						return o, usageErrorf("option -d needs a value in milliseconds")
					}
					j = len(a)
				}
				if err := o.set(name, val, &udp); err != nil {
					return o, err
				}
			}
		default:
			operands = append(operands, a)
		}
	}
	if o.Help {
		return o, nil
	}
	if o.WaitFor != 0 && o.Wait == 0 {
		return o, usageErrorf("--wait-for needs --wait PORT")
	}
	if o.Wait != 0 && o.WaitFor == 0 {
		o.WaitFor = defaultWaitFor
	}
	if len(operands) == 0 {
		return o, usageErrorf("missing HOST and PORT")
	}
	if o.TOTP.File != "" || o.TOTP.Custom {
		return o, o.TOTP.finish(&o, operands)
	}
	if len(operands) == 1 {
		return o, usageErrorf("missing PORT after host %q", operands[0])
	}
	o.Host = operands[0]
	for _, arg := range operands[1:] {
		step, err := parseKnockPort(arg, udp)
		if err != nil {
			return o, err
		}
		o.Steps = append(o.Steps, step)
	}
	return o, nil
}

// set applies one option by its long name.
func (o *knockOpts) set(name, val string, udp *bool) error {
	switch name {
	case "udp":
		*udp = true
	case "verbose":
		o.Verbose = true
	case "ipv4":
		o.Family = 4
	case "ipv6":
		o.Family = 6
	case "help":
		o.Help = true
	case "totp", "port-range", "length", "step", "protocol", "at":
		return o.TOTP.setOpt(name, val)
	case "delay":
		ms, err := strconv.Atoi(val)
		if err != nil || ms < 0 {
			return usageErrorf("bad delay %q: want a whole number of milliseconds, 0 or more", val)
		}
		o.Delay = time.Duration(ms) * time.Millisecond
	default:
		return o.setWait(name, val)
	}
	return nil
}

// parseKnockPort parses PORT, PORT:PROTO or PORT/PROTO. A port without a
// protocol is UDP when udp is set, TCP otherwise.
func parseKnockPort(arg string, udp bool) (policy.PortProto, error) {
	portStr, protoStr, hasProto := strings.Cut(arg, ":")
	if !hasProto {
		portStr, protoStr, hasProto = strings.Cut(arg, "/")
	}
	pp := policy.PortProto{Proto: policy.TCP}
	if udp {
		pp.Proto = policy.UDP
	}
	if hasProto {
		p, err := policy.ParseProto(protoStr)
		if err != nil {
			return pp, usageErrorf("bad port %q: unknown protocol %q: want tcp or udp", arg, protoStr)
		}
		pp.Proto = p
	}
	n, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || n == 0 {
		return pp, usageErrorf("bad port %q: want a number from 1 to 65535, optionally followed by :tcp or :udp", arg)
	}
	pp.Port = uint16(n)
	return pp, nil
}

// knockMain runs `sesame knock ARGS...` and returns the exit status: 0 when
// every hit was sent, 1 on a network error, 2 on a usage error.
func knockMain(args []string, stdout, stderr io.Writer) int {
	if hasSPAFlag(args) {
		return spaKnockMain(args, stdout, stderr) // spa.go
	}
	o, err := parseKnockArgs(args)
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "sesame knock: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: %v\n%s", strings.TrimPrefix(err.Error(), "usage: "), knockUsage)
		return 2
	}
	if o.Help {
		fmt.Fprint(stdout, knockUsage)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := resolveKnockHost(ctx, o.Host, o.Family)
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: %v\n", err)
		return 1
	}
	for i, step := range o.Steps {
		if i > 0 && o.Delay > 0 {
			time.Sleep(o.Delay)
		}
		if o.Verbose {
			fmt.Fprintf(stdout, "hitting %s %s\n", step.Proto, netip.AddrPortFrom(addr, step.Port))
		}
		if err := sendKnock(addr, step); err != nil {
			fmt.Fprintf(stderr, "sesame knock: hit %s on %s (%s): %v\n", step, o.Host, addr, err)
			return 1
		}
	}
	if o.Wait != 0 {
		return waitAccess(addr, o.Wait, o.WaitFor, stdout, stderr)
	}
	return 0
}

// resolveKnockHost turns host into one address: a literal as it is, a name
// through the resolver, keeping the first address of the wanted family
// (0 for any), like knockd's getaddrinfo.
func resolveKnockHost(ctx context.Context, host string, family int) (netip.Addr, error) {
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

// sendKnock sends one packet to addr at step: for TCP a single SYN (a
// non-blocking connect, closed at once, so the kernel never retransmits),
// for UDP a one-byte datagram.
func sendKnock(addr netip.Addr, step policy.PortProto) error {
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
		// The SYN left (or, on loopback, was answered at once).
		return nil
	default:
		return fmt.Errorf("connect: %w", err)
	}
}

// sockaddr converts addr and port into a unix socket address and family.
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

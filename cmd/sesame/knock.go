package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/client"
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
  --spa KEYFILE      send one SPA packet instead (sesame knock --spa KEYFILE -h
                     lists its options)
Options may come before, between or after the operands, until "--"; short
ones group (-uv, -vd100). PORT is 1-65535; PROTO is tcp or udp, written
PORT:PROTO or PORT/PROTO.
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
	TOTP    totpOpts      // --totp and its options
	SPA     *spaOpts      // --spa and its options (knock_spa.go); nil: a knock
	Wait    uint16        // --wait: the TCP port to try after knocking; 0: none
	WaitFor time.Duration // --wait-for
}

// totpOpts are `sesame knock --totp` and the door settings it may override.
type totpOpts struct {
	File   string
	Door   client.TOTP
	At     time.Time // zero: now
	Custom bool      // a totp-only option was given
}

// knockOnly and spaOnly name the flags of one mode, to refuse them in the
// other.
var (
	knockOnly = []string{"udp", "delay", "wait", "wait-for", "totp", "port-range", "length", "step", "protocol", "at"}
	spaOnly   = []string{"access", "fw-timeout", "allow-ip", "source-ip", "server-port", "spoof-user", "hmac-digest"}
)

// parseKnockArgs parses knock's command line, knockd's and fwknop's flags
// in one set (see flags).
func parseKnockArgs(args []string) (knockOpts, error) {
	var (
		o   knockOpts
		udp bool
		fam = func(n int) func(string) error {
			return func(v string) error {
				if v != "true" {
					return usageErrorf("option --ipv%d takes no value", n)
				}
				o.Family = n
				return nil
			}
		}
		value = func(name string) func(string) error {
			return func(v string) error { return o.set(name, v) }
		}
	)
	fs := newFlags("knock", "")
	fs.text = knockUsage
	fs.switchFlag(&udp, "udp", "u", "")
	fs.switchFlag(&o.Verbose, "verbose", "v", "")
	fs.BoolFuncP("ipv4", "4", "", fam(4))
	fs.BoolFuncP("ipv6", "6", "", fam(6))
	fs.FuncP("delay", "d", "", value("delay"))
	for _, name := range []string{"wait", "wait-for", "totp", "port-range", "length", "step", "protocol", "at"} {
		fs.Func(name, "", value(name))
	}
	spa := spaFlags(fs)
	operands, err := fs.parse(args)
	if fs.Changed("spa") {
		o.SPA = spa
	}
	if he := (*helpError)(nil); errors.As(err, &he) {
		return knockOpts{Help: true, SPA: o.SPA}, nil
	}
	if err != nil {
		return o, err
	}
	if o.SPA != nil {
		if err := onlyFlags(fs, knockOnly, "does not go with --spa"); err != nil {
			return o, err
		}
		return o, o.spaFinish(fs, operands)
	}
	if err := onlyFlags(fs, spaOnly, "goes with --spa KEYFILE"); err != nil {
		return o, err
	}
	if o.WaitFor != 0 && o.Wait == 0 {
		return o, usageErrorf("--wait-for needs --wait PORT")
	}
	if o.Wait != 0 && o.WaitFor == 0 {
		o.WaitFor = client.DefaultWait
	}
	if len(operands) == 0 {
		return o, usageErrorf("missing HOST and PORT")
	}
	if o.TOTP.File != "" || o.TOTP.Custom {
		return o, o.totpFinish(operands)
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

// onlyFlags refuses any of names that was given.
func onlyFlags(fs *flags, names []string, why string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Changed {
			if f.Shorthand != "" {
				return usageErrorf("option -%s %s", f.Shorthand, why)
			}
			return usageErrorf("option --%s %s", n, why)
		}
	}
	return nil
}

// set applies one option with a value by its long name.
func (o *knockOpts) set(name, val string) error {
	t := &o.TOTP
	if name != "totp" && name != "delay" && name != "wait" && name != "wait-for" {
		t.Custom = true
	}
	switch name {
	case "delay":
		ms, err := strconv.Atoi(val)
		if err != nil || ms < 0 {
			return usageErrorf("bad delay %q: want a whole number of milliseconds, 0 or more", val)
		}
		o.Delay = time.Duration(ms) * time.Millisecond
	case "wait":
		port, proto, _ := strings.Cut(val, "/")
		if proto == "" {
			port, proto, _ = strings.Cut(val, ":")
		}
		if proto != "" {
			if p, err := policy.ParseProto(proto); err != nil || p != policy.TCP {
				return usageErrorf("bad --wait %q: only a tcp port can confirm access (a connect that succeeds)", val)
			}
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return usageErrorf("bad --wait %q: want a port from 1 to 65535, optionally /tcp", val)
		}
		o.Wait = uint16(n)
	case "wait-for":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 || d > client.MaxWait {
			return usageErrorf("bad --wait-for %q: want a duration such as 5s, at most %s", val, client.MaxWait)
		}
		o.WaitFor = d
	case "totp":
		t.File = val
	case "port-range":
		lo, hi, err := policy.ParsePortRange(val)
		if err != nil {
			return usageErrorf("bad --port-range: %v: want LO-HI, e.g. 20000-29999", err)
		}
		t.Door.Lo, t.Door.Hi = lo, hi
	case "length":
		n, err := strconv.Atoi(val)
		if err != nil || n < policy.MinTOTPLength || n > policy.MaxTOTPLength {
			return usageErrorf("bad --length %q: want %d to %d", val, policy.MinTOTPLength, policy.MaxTOTPLength)
		}
		t.Door.Length = n
	case "step":
		d, err := time.ParseDuration(val)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return usageErrorf("bad --step %q: want a whole number of seconds such as 30s", val)
		}
		t.Door.Step = d
	case "protocol":
		p, err := policy.ParseProto(val)
		if err != nil {
			return usageErrorf("bad --protocol: %v", err)
		}
		t.Door.Proto = p
	case "at":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			t.At = time.Unix(n, 0)
		} else if ts, err := time.Parse(time.RFC3339, val); err == nil {
			t.At = ts
		} else {
			return usageErrorf("bad --at %q: want unix seconds or an RFC 3339 time", val)
		}
	}
	return nil
}

// totpFinish checks the operands of a TOTP knock and derives its steps.
func (o *knockOpts) totpFinish(operands []string) error {
	t := &o.TOTP
	if t.File == "" {
		return usageErrorf("--port-range, --length, --step, --protocol and --at go with --totp SECRET_FILE")
	}
	if len(operands) != 1 {
		return usageErrorf("with --totp, give HOST only (the ports are derived)")
	}
	o.Host = operands[0]
	t.Door = t.Door.WithDefaults()
	if err := t.Door.Check(); err != nil {
		return usageErrorf("%v", err)
	}
	secret, err := client.ReadSecret(t.File)
	if err != nil {
		return err
	}
	at := t.At
	if at.IsZero() {
		at = time.Now()
	}
	o.Steps = t.Door.Steps(secret, at)
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

// knockCmd runs `sesame knock ARGS...`: nil when every hit was sent (and,
// with --wait, access was granted), a usage error, or what failed.
func knockCmd(args []string, stdout, stderr io.Writer) error {
	o, err := parseKnockArgs(args)
	use := knockUsage
	if o.SPA != nil {
		use = spaKnockUsage
	}
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		ue.usage = use
	}
	if err != nil {
		return err
	}
	if o.Help {
		return &helpError{usage: use}
	}
	if o.SPA != nil {
		return spaKnock(o, stdout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := client.Resolve(ctx, o.Host, o.Family)
	if err != nil {
		return err
	}
	var onHit func(policy.PortProto)
	if o.Verbose {
		onHit = func(step policy.PortProto) {
			fmt.Fprintf(stdout, "hitting %s %s\n", step.Proto, netip.AddrPortFrom(addr, step.Port))
		}
	}
	if err := client.Knock(addr, o.Steps, o.Delay, onHit); err != nil {
		if he := (*client.HitError)(nil); errors.As(err, &he) {
			return fmt.Errorf("hit %s on %s (%s): %w", he.Step, o.Host, addr, he.Err)
		}
		return err
	}
	if o.Wait == 0 {
		return nil
	}
	target := netip.AddrPortFrom(addr, o.Wait)
	if err := client.WaitOpen(target, o.WaitFor); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "access granted: tcp %s is open\n", target)
	return nil
}

package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
)

func tcp(p uint16) policy.PortProto { return policy.PortProto{Port: p, Proto: policy.TCP} }
func udp(p uint16) policy.PortProto { return policy.PortProto{Port: p, Proto: policy.UDP} }

func TestParseKnockArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    knockOpts
		wantErr string // substring; "" means success
	}{
		{name: "plain tcp", in: []string{"h", "7000", "8000"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(7000), tcp(8000)}}},
		{name: "per-port protocols", in: []string{"h", "7000:tcp", "8000:udp", "9000/udp", "10/TCP"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(7000), udp(8000), udp(9000), tcp(10)}}},
		{name: "-u makes bare ports udp, explicit proto wins", in: []string{"-u", "h", "1", "2:tcp"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{udp(1), tcp(2)}}},
		{name: "--udp after operands (getopt permutes)", in: []string{"h", "1", "--udp"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{udp(1)}}},
		{name: "grouped short flags", in: []string{"-uv4", "h", "65535"},
			want: knockOpts{Host: "h", Verbose: true, Family: 4, Steps: []policy.PortProto{udp(65535)}}},
		{name: "-d separate", in: []string{"-d", "250", "h", "1"},
			want: knockOpts{Host: "h", Delay: 250 * time.Millisecond, Steps: []policy.PortProto{tcp(1)}}},
		{name: "-d attached in a group", in: []string{"-vd100", "h", "1"},
			want: knockOpts{Host: "h", Verbose: true, Delay: 100 * time.Millisecond, Steps: []policy.PortProto{tcp(1)}}},
		{name: "--delay=", in: []string{"--delay=5", "--ipv6", "--verbose", "h", "1"},
			want: knockOpts{Host: "h", Verbose: true, Family: 6, Delay: 5 * time.Millisecond, Steps: []policy.PortProto{tcp(1)}}},
		{name: "--delay separate", in: []string{"--delay", "0", "h", "1"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(1)}}},
		{name: "last of -4/-6 wins", in: []string{"-4", "-6", "h", "1"},
			want: knockOpts{Host: "h", Family: 6, Steps: []policy.PortProto{tcp(1)}}},
		{name: "-- ends options", in: []string{"--", "h", "1"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(1)}}},
		{name: "ipv6 literal host", in: []string{"-6", "2001:db8::1", "22"},
			want: knockOpts{Host: "2001:db8::1", Family: 6, Steps: []policy.PortProto{tcp(22)}}},
		{name: "help", in: []string{"-h"}, want: knockOpts{Help: true}},
		{name: "long help", in: []string{"--help", "h"}, want: knockOpts{Help: true}},

		{name: "nothing", in: nil, wantErr: "missing HOST and PORT"},
		{name: "host only", in: []string{"h"}, wantErr: `missing PORT after host "h"`},
		{name: "port 0", in: []string{"h", "0"}, wantErr: `bad port "0": want a number from 1 to 65535`},
		{name: "port too big", in: []string{"h", "65536"}, wantErr: `bad port "65536"`},
		{name: "port negative", in: []string{"h", "--", "-1"}, wantErr: `bad port "-1"`},
		{name: "port not a number", in: []string{"h", "ssh"}, wantErr: `bad port "ssh"`},
		{name: "empty port", in: []string{"h", ":udp"}, wantErr: `bad port ":udp"`},
		{name: "unknown proto", in: []string{"h", "7000:icmp"}, wantErr: `unknown protocol "icmp": want tcp or udp`},
		{name: "unknown short flag", in: []string{"-x", "h", "1"}, wantErr: "unknown option -x"},
		{name: "unknown long flag", in: []string{"--fast", "h", "1"}, wantErr: "unknown option --fast"},
		{name: "flag with value it does not take", in: []string{"--udp=1", "h", "1"}, wantErr: "--udp takes no value"},
		{name: "-d without value", in: []string{"h", "1", "-d"}, wantErr: "-d needs a value"},
		{name: "--delay without value", in: []string{"h", "1", "--delay"}, wantErr: "--delay needs a value"},
		{name: "negative delay", in: []string{"-d", "-5", "h", "1"}, wantErr: `bad delay "-5"`},
		{name: "delay not a number", in: []string{"--delay=1s", "h", "1"}, wantErr: `bad delay "1s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseKnockArgs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !isUsageError(err) {
					t.Fatalf("parseKnockArgs(%q) error = %v, want a usage error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseKnockArgs(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseKnockArgs(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestKnockMainExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         []string
		want       int
		wantStderr string
		wantStdout string
	}{
		{name: "usage error", in: []string{"127.0.0.1", "0"}, want: 2, wantStderr: `bad port "0"`},
		{name: "usage error prints usage", in: []string{}, want: 2, wantStderr: "usage: sesame knock"},
		{name: "help", in: []string{"--help"}, want: 0, wantStdout: "usage: sesame knock"},
		{name: "family mismatch names the host", in: []string{"-6", "127.0.0.1", "1"}, want: 1, wantStderr: "host 127.0.0.1 is not an IPv6 address"},
		{name: "unresolvable host is named", in: []string{"no-such-host.invalid", "1"}, want: 1, wantStderr: "no-such-host.invalid"},
		{name: "send error names the host", in: []string{"fe80::1%no-such-if0", "1"}, want: 1, wantStderr: "on fe80::1%no-such-if0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			got := knock(tt.in, &stdout, &stderr)
			if got != tt.want {
				t.Errorf("knock(%q) = %d, want %d; stderr: %s", tt.in, got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("knock(%q) stderr = %q, want it to contain %q", tt.in, stderr.String(), tt.wantStderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("knock(%q) stdout = %q, want it to contain %q", tt.in, stdout.String(), tt.wantStdout)
			}
		})
	}
}

// TestKnockSendsUDP checks that each UDP step delivers exactly one datagram
// and that -v prints knockd's line.
func TestKnockSendsUDP(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	ps := itoa(port)

	var stdout, stderr bytes.Buffer
	if got := knock([]string{"-v", "-u", "-d", "1", "127.0.0.1", ps, ps + ":udp"}, &stdout, &stderr); got != 0 {
		t.Fatalf("knock = %d, stderr: %s", got, stderr.String())
	}
	want := "hitting udp 127.0.0.1:" + ps + "\nhitting udp 127.0.0.1:" + ps + "\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("verbose output mismatch (-want +got):\n%s", diff)
	}
	buf := make([]byte, 64)
	for i := range 2 {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i+1, err)
		}
		if n != 1 {
			t.Errorf("datagram %d is %d bytes, want 1", i+1, n)
		}
	}
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := pc.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("a third datagram arrived; want exactly one per step")
	}
}

// TestKnockSendsTCP checks that a TCP step reaches a listener: on loopback
// the handshake completes before the knock closes, so the listener accepts
// one connection per step. (That exactly one SYN leaves is proven in the
// e2e suite with an nftables counter.)
func TestKnockSendsTCP(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			host := map[string]string{"tcp4": "127.0.0.1", "tcp6": "::1"}[network]
			ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			port := netip.MustParseAddrPort(ln.Addr().String()).Port()
			ps := itoa(port)

			var stdout, stderr bytes.Buffer
			if got := knock([]string{"--verbose", host, ps + "/tcp"}, &stdout, &stderr); got != 0 {
				t.Fatalf("knock = %d, stderr: %s", got, stderr.String())
			}
			want := "hitting tcp " + netip.AddrPortFrom(netip.MustParseAddr(host), port).String() + "\n"
			if diff := cmp.Diff(want, stdout.String()); diff != "" {
				t.Errorf("verbose output mismatch (-want +got):\n%s", diff)
			}
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
			c, err := ln.Accept()
			if err != nil {
				t.Fatalf("listener saw no connection from the knock: %v", err)
			}
			c.Close()
		})
	}
}

func TestKnockClosedTCPPortIsNotAnError(t *testing.T) {
	t.Parallel()
	// Bind a port, then close it: a knock on it gets a RST, which knock
	// ignores (knockd does too: the knock was delivered).
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	var stdout, stderr bytes.Buffer
	if got := knock([]string{"127.0.0.1", itoa(port)}, &stdout, &stderr); got != 0 {
		t.Errorf("knock on a closed port = %d, want 0; stderr: %s", got, stderr.String())
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// knock runs `sesame knock ARGS...` as main does and returns its exit
// status.
func knock(args []string, stdout, stderr io.Writer) int {
	return run(append([]string{"knock"}, args...), stdout, stderr)
}

func isUsageError(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

func TestParseKnockTOTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := dir + "/a.key"
	if code := run([]string{"keygen", "-o", key}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	if code := run([]string{"keygen", "-o", key}, io.Discard, io.Discard); code != 1 {
		t.Errorf("keygen over an existing file: exit %d, want 1", code)
	}
	o, err := parseKnockArgs([]string{"--port-range", "1000-1009", "--length", "8", "--at", "59", "--totp", key, "host"})
	if err != nil || len(o.Steps) != 8 || o.Host != "host" {
		t.Fatalf("parseKnockArgs = %+v, %v; want 8 steps to host", o, err)
	}
	for _, s := range o.Steps {
		if s.Port < 1000 || s.Port > 1009 || s.Proto != policy.TCP {
			t.Errorf("step %v outside 1000-1009/tcp", s)
		}
	}
	for _, bad := range [][]string{
		{"--totp", key, "host", "7000"},
		{"--length", "4", "host"},
		{"--totp", key, "--port-range", "9-1", "host"},
	} {
		if _, err := parseKnockArgs(bad); !isUsageError(err) {
			t.Errorf("parseKnockArgs(%q) = %v, want a usage error", bad, err)
		}
	}
}

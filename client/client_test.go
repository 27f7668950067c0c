package client

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
	"github.com/sesame-knock/sesame/totp"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host    string
		family  int
		want    netip.Addr
		wantErr string
	}{
		{host: "192.0.2.1", want: netip.MustParseAddr("192.0.2.1")},
		{host: "::ffff:192.0.2.1", family: 4, want: netip.MustParseAddr("192.0.2.1")},
		{host: "2001:db8::1", family: 6, want: netip.MustParseAddr("2001:db8::1")},
		{host: "192.0.2.1", family: 6, wantErr: "host 192.0.2.1 is not an IPv6 address"},
		{host: "2001:db8::1", family: 4, wantErr: "is not an IPv4 address"},
		{host: "no-such-host.invalid", wantErr: "resolve host no-such-host.invalid"},
	}
	for _, tt := range tests {
		got, err := Resolve(context.Background(), tt.host, tt.family)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%q, %d) = %v, %v; want error %q", tt.host, tt.family, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q, %d) = %v, %v; want %v", tt.host, tt.family, got, err, tt.want)
		}
	}
}

// Knock sends one datagram per UDP step, in order, and reports each step
// before it leaves.
func TestKnockUDP(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	steps := []policy.PortProto{{Port: port, Proto: policy.UDP}, {Port: port, Proto: policy.UDP}}
	var seen []policy.PortProto
	if err := Knock(netip.MustParseAddr("127.0.0.1"), steps, time.Millisecond, func(s policy.PortProto) { seen = append(seen, s) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(steps, seen); diff != "" {
		t.Errorf("onHit saw (-want +got):\n%s", diff)
	}
	buf := make([]byte, 8)
	for i := range steps {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _, err := pc.ReadFromUDPAddrPort(buf); err != nil || n != 1 {
			t.Fatalf("datagram %d: %d bytes, %v; want 1 byte", i+1, n, err)
		}
	}
}

// A step that cannot leave ends the knock with a HitError naming it.
func TestKnockHitError(t *testing.T) {
	t.Parallel()
	step := policy.PortProto{Port: 7000, Proto: policy.TCP}
	err := Knock(netip.MustParseAddr("fe80::1%no-such-if0"), []policy.PortProto{step, step}, 0, nil)
	var he *HitError
	if !errors.As(err, &he) || he.Step != step || !strings.Contains(err.Error(), "zone of fe80::1%no-such-if0") {
		t.Errorf("Knock = %v, want a HitError for %v about the zone", err, step)
	}
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	d := TOTP{}.WithDefaults()
	want := TOTP{Lo: policy.DefaultTOTPLo, Hi: policy.DefaultTOTPHi, Length: policy.DefaultTOTPLength, Step: policy.DefaultTOTPStep, Proto: policy.TCP}
	if d != want {
		t.Errorf("WithDefaults = %+v, want %+v", d, want)
	}
	if err := (TOTP{Lo: 1000, Hi: 1002, Length: 4}).Check(); err == nil {
		t.Error("Check: a range of 3 ports passed for 4 steps")
	}
	secret := []byte("0123456789abcdefghij")
	at := time.Unix(1_700_000_000, 0)
	d = TOTP{Lo: 1000, Hi: 1009, Length: 6, Step: 30 * time.Second, Proto: policy.UDP}
	got := d.Steps(secret, at)
	ports := totp.Sequence(secret, totp.Counter(at, 30*time.Second), 1000, 1009, 6)
	if len(got) != len(ports) {
		t.Fatalf("Steps = %v, want %d steps", got, len(ports))
	}
	for i, s := range got {
		if s.Port != ports[i] || s.Proto != policy.UDP {
			t.Errorf("step %d = %v, want %d/udp", i, s, ports[i])
		}
	}
}

// SendSPA's datagram verifies with the same keys and carries the request.
func TestSendSPA(t *testing.T) {
	t.Parallel()
	keys, err := spa.GenerateKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := spa.NewVerifier(keys, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	server := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	now := time.Unix(1_700_000_000, 0)
	access := []spa.Access{{Proto: "tcp", Port: 22}}
	tests := []struct {
		name     string
		req      SPA
		wantAddr netip.Addr
		wantType spa.Type
	}{
		{name: "own address", req: SPA{Keys: keys, User: "alice", Access: access}, wantAddr: netip.MustParseAddr("127.0.0.1"), wantType: spa.TypeAccess},
		{name: "source", req: SPA{Keys: keys, Access: access, Source: true, For: time.Minute}, wantAddr: netip.IPv4Unspecified(), wantType: spa.TypeClientTimeoutAccess},
		{name: "given address", req: SPA{Keys: keys, Access: access, Addr: netip.MustParseAddr("::ffff:198.51.100.7")}, wantAddr: netip.MustParseAddr("198.51.100.7"), wantType: spa.TypeAccess},
	}
	for _, tt := range tests {
		sent, n, err := SendSPA(server, tt.req, now)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		buf := make([]byte, 2048)
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil || got != n {
			t.Fatalf("%s: read %d bytes, %v; SendSPA said %d", tt.name, got, err, n)
		}
		m, err := v.Verify(buf[:got], now)
		if err != nil {
			t.Fatalf("%s: verify: %v", tt.name, err)
		}
		if m.Addr != tt.wantAddr || sent.Addr != tt.wantAddr || m.Type != tt.wantType {
			t.Errorf("%s: message addr %v (sent %v), type %v; want %v, %v", tt.name, m.Addr, sent.Addr, m.Type, tt.wantAddr, tt.wantType)
		}
		wantUser := tt.req.User
		if wantUser == "" {
			wantUser = "sesame"
		}
		if m.User != wantUser || m.ClientTimeout != tt.req.For || !cmp.Equal(m.Access, access) {
			t.Errorf("%s: message %+v; want user %s, for %s, access %v", tt.name, m, wantUser, tt.req.For, access)
		}
	}
}

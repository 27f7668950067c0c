package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTCPFlagsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want TCPFlags
		str  string // canonical String(); "" means same as in
	}{
		{in: "syn,!ack", want: DefaultTCPFlags},
		{in: "syn", want: TCPFlags{Mask: FlagSYN, Want: FlagSYN}},
		{in: "!ack", want: TCPFlags{Mask: FlagACK}},
		{in: " SYN , !Ack , !rst ", want: TCPFlags{Mask: FlagSYN | FlagACK | FlagRST, Want: FlagSYN}, str: "syn,!rst,!ack"},
		{in: "fin,syn,rst,psh,ack,urg", want: TCPFlags{Mask: 0x3f, Want: 0x3f}},
		{in: "!fin,!syn,!rst,!psh,!ack,!urg", want: TCPFlags{Mask: 0x3f}},
	}
	for _, tt := range tests {
		got, err := ParseTCPFlags(tt.in)
		if err != nil {
			t.Errorf("ParseTCPFlags(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseTCPFlags(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseTCPFlags(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		back, err := ParseTCPFlags(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
		}
	}
	// Every possible (mask, want) pair survives String then Parse.
	for mask := range uint8(0x40) {
		for want := range uint8(0x40) {
			if mask == 0 || want&^mask != 0 {
				continue
			}
			f := TCPFlags{Mask: mask, Want: want}
			back, err := ParseTCPFlags(f.String())
			if err != nil || back != f {
				t.Fatalf("round trip of %+v via %q: %+v, %v", f, f.String(), back, err)
			}
		}
	}
	for _, bad := range []string{"", "syn,syn", "syn,!syn", "sin", "syn;ack", "!"} {
		if _, err := ParseTCPFlags(bad); err == nil {
			t.Errorf("ParseTCPFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestPortProtoRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    PortProto
		wantErr bool
	}{
		{in: "7000", want: tcp(7000)},
		{in: "7000/tcp", want: tcp(7000)},
		{in: "7000/udp", want: udp(7000)},
		{in: "1/UDP", want: udp(1)},
		{in: "65535", want: tcp(65535)},
		{in: "0", wantErr: true},
		{in: "65536", wantErr: true},
		{in: "7000:udp", wantErr: true},
		{in: "7000/sctp", wantErr: true},
		{in: "7000/", wantErr: true},
		{in: "/tcp", wantErr: true},
		{in: "+22", wantErr: true},
		{in: "-22", wantErr: true},
		{in: " 22", wantErr: true},
		{in: "ssh", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePortProto(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePortProto(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePortProto(%q) = %v, want %v", tt.in, got, tt.want)
		}
		back, err := ParsePortProto(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q: %v, %v", got.String(), back, err)
		}
	}
}

func TestGuardedAndKnockPorts(t *testing.T) {
	t.Parallel()
	p, diags := Load("testdata/reference.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	wantGuarded := []PortProto{tcp(22), tcp(443), tcp(2222), tcp(2223), tcp(8443), udp(51820)}
	if diff := cmp.Diff(wantGuarded, p.Guarded()); diff != "" {
		t.Errorf("Guarded() mismatch (-want +got):\n%s", diff)
	}
	wantKnock := []PortProto{tcp(7000), tcp(7400), tcp(7501), tcp(7503), tcp(7521), tcp(7523), tcp(9000), udp(7100), udp(7200), udp(7300), udp(7502), udp(7522), udp(8000)}
	if diff := cmp.Diff(wantKnock, p.KnockPorts()); diff != "" {
		t.Errorf("KnockPorts() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]PortRange{{20000, 29999, TCP}}, p.KnockRanges()); diff != "" {
		t.Errorf("KnockRanges() mismatch (-want +got):\n%s", diff)
	}
	if d := p.Door("web-admin"); d == nil || d.Name != "web-admin" {
		t.Errorf("Door(web-admin) = %v", d)
	}
	if d := p.Door("nope"); d != nil {
		t.Errorf("Door(nope) = %v, want nil", d)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	want := `table:      inet sesame
closed:     reject
interfaces: eth0, wg0
doors:      2
  ssh: knock 7000/tcp,8000/udp,9000/tcp within 10s (tcp flags syn,!rst,!ack), opens 22/tcp and forwards 8080/tcp,192.0.2.10:22/tcp,[2001:db8:5::10]:443/tcp for 1m once connected within 15s, close 9000/tcp,8000/udp,7000/tcp
  web-admin: knock 7100/udp,7200/udp,7300/udp,7400/tcp within 5s, opens 443/tcp,8443/tcp,51820/udp for 30s once connected within 10s
`
	if diff := cmp.Diff(want, referencePolicy.Summary()); diff != "" {
		t.Errorf("Summary() mismatch (-want +got):\n%s", diff)
	}
	min := &Policy{Table: "t", Closed: ClosedDrop}
	if got := min.Summary(); !strings.Contains(got, "interfaces: default-route interfaces\n") || !strings.Contains(got, "doors:      0\n") {
		t.Errorf("Summary() of an empty policy = %q", got)
	}
}

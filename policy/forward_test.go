package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{"8080/tcp", Target{PortProto: PortProto{8080, TCP}}, ""},
		{"53/udp", Target{PortProto: PortProto{53, UDP}}, ""},
		{"8080", Target{PortProto: PortProto{8080, TCP}}, ""},
		{"192.0.2.10:22/tcp", Target{Addr: netip.MustParseAddr("192.0.2.10"), PortProto: PortProto{22, TCP}}, ""},
		{"[2001:db8:5::10]:443/udp", Target{Addr: netip.MustParseAddr("2001:db8:5::10"), PortProto: PortProto{443, UDP}}, ""},
		{"[::ffff:192.0.2.10]:22", Target{Addr: netip.MustParseAddr("192.0.2.10"), PortProto: PortProto{22, TCP}}, ""},
		{"2001:db8::1:443/tcp", Target{}, "brackets"},
		{"[192.0.2.10:22/tcp", Target{}, "brackets"},
		{"192.0.2.300:22/tcp", Target{}, "not an IP address"},
		{"[fe80::1%eth0]:22", Target{}, "not an IP address"},
		{"0.0.0.0:22/tcp", Target{}, "not a unicast address"},
		{"127.0.0.1:22/tcp", Target{}, "not a unicast address"},
		{"192.0.2.10:0/tcp", Target{}, "out of range"},
		{"192.0.2.10:22/icmp", Target{}, "unknown protocol"},
		{"192.0.2.10:/tcp", Target{}, "not a port"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTarget(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if back, err := ParseTarget(got.String()); err != nil || back != got {
			t.Errorf("ParseTarget(%q.String() = %q) = %v, %v", tt.in, got.String(), back, err)
		}
	}
}

// TestForwardOnlyDoor: a door with forward and no open is valid, guards no
// local port, and says what it forwards; an open port equal to a forward
// target's port is fine (different paths).
func TestForwardOnlyDoor(t *testing.T) {
	t.Parallel()
	p, diags := Parse("fwd.hcl", []byte(`
door "app" {
  sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
  forward  = ["8080/tcp", "192.0.2.10:22/tcp"]
}
door "both" {
  sequence = ["7100/tcp", "8100/udp", "9100/tcp"]
  open     = ["22/tcp"]
  forward  = ["22/tcp"]
}
`))
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", diags.Error())
	}
	if len(p.Doors[0].Open) != 0 || !p.Forwards() {
		t.Errorf("door app: Open %v, Forwards %v; want none and true", p.Doors[0].Open, p.Forwards())
	}
	if diff := cmp.Diff([]PortProto{{22, TCP}}, p.Guarded()); diff != "" {
		t.Errorf("Guarded (-want +got):\n%s", diff)
	}
	if s := p.Summary(); !strings.Contains(s, "app: knock 7000/tcp,8000/udp,9000/tcp within 5s, forwards 8080/tcp,192.0.2.10:22/tcp for 30s") ||
		!strings.Contains(s, "opens 22/tcp and forwards 22/tcp for 30s") {
		t.Errorf("Summary:\n%s", s)
	}
}

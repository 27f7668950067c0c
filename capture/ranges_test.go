package capture

import (
	"testing"

	"github.com/sesame-knock/sesame/policy"
)

func totpPolicy() *policy.Policy {
	p := testPolicy()
	p.Doors = append(p.Doors, policy.Door{
		Name:     "vault",
		TOTP:     &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Proto: policy.TCP},
		TCPFlags: policy.DefaultTCPFlags,
		Open:     []policy.PortProto{{Port: 2222, Proto: policy.TCP}},
	}, policy.Door{
		Name: "vault-udp",
		TOTP: &policy.TOTP{Lo: 40000, Hi: 40999, Length: 4, Proto: policy.UDP},
		Open: []policy.PortProto{{Port: 2223, Proto: policy.TCP}},
	})
	return p
}

func TestFilterRanges(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		proto uint8
		flags uint8
		port  uint16
		pass  bool
	}{
		{"tcp ACK at range start", 6, ack, 20000, true},
		{"tcp ACK at range end", 6, ack, 29999, true},
		{"tcp ACK inside", 6, ack, 24567, true},
		{"tcp ACK below", 6, ack, 19999, false},
		{"tcp ACK above", 6, ack, 30000, false},
		{"tcp ACK static knock port still passes", 6, ack, 7000, true},
		{"udp inside the tcp range", 17, 0, 25000, false},
		{"udp range start", 17, 0, 40000, true},
		{"udp range end", 17, 0, 40999, true},
		{"udp above", 17, 0, 41000, false},
		{"udp static knock port", 17, 0, 8000, true},
		{"tcp inside the udp range", 6, ack, 40500, false},
	} {
		frame := ipFrame(testPkt{src: v4a, dst: v4b, proto: tt.proto, dport: tt.port, flags: tt.flags})
		if got := runRaw(t, totpPolicy(), frame); (got > 0) != tt.pass {
			t.Errorf("%s: filter returned %d, want pass=%v", tt.name, got, tt.pass)
		}
		s := knockSet(totpPolicy())
		proto := policy.Proto(tt.proto)
		if got := s.has(proto, tt.port); got != tt.pass {
			t.Errorf("%s: knockSet has %v, want %v", tt.name, got, tt.pass)
		}
	}
}

// TestFilterRangesSize checks that a 10000-port range costs a few
// instructions, not one per port.
func TestFilterRangesSize(t *testing.T) {
	t.Parallel()
	base, err := Filter(testPolicy())
	if err != nil {
		t.Fatal(err)
	}
	with, err := Filter(totpPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if d := len(with) - len(base); d != 6 {
		t.Errorf("two ranges added %d instructions, want 6", d)
	}
}

package capture

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/policy"
)

func testPolicy() *policy.Policy {
	return &policy.Policy{Doors: []policy.Door{{
		Name:          "ssh",
		Sequence:      []policy.PortProto{{Port: 7000, Proto: policy.TCP}, {Port: 8000, Proto: policy.UDP}, {Port: 9000, Proto: policy.TCP}},
		CloseSequence: []policy.PortProto{{Port: 9001, Proto: policy.TCP}},
		TCPFlags:      policy.DefaultTCPFlags,
		Open:          []policy.PortProto{{Port: 22, Proto: policy.TCP}},
	}}}
}

const (
	syn    = policy.FlagSYN
	ack    = policy.FlagACK
	synAck = policy.FlagSYN | policy.FlagACK
)

func TestFilterRaw(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"v4 SYN to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}), true},
		{"v6 SYN to knock port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 9000, flags: syn}), true},
		{"v4 UDP to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000}), true},
		{"v6 UDP to knock port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000}), true},
		{"v4 UDP to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8001}), false},
		{"v6 UDP to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 53}), false},
		{"v4 UDP to a TCP knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 7000}), false},
		{"v4 ACK to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: ack}), false},
		{"v6 ACK to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 22, flags: ack}), false},
		{"v4 ACK to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: ack}), true},
		{"v4 SYN+ACK to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 443, flags: synAck}), false},
		{"v6 SYN+ACK to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 443, flags: synAck}), false},
		{"v4 SYN+ACK to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 9001, flags: synAck}), true},
		{"v4 bare SYN to any port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: syn}), true},
		{"v6 bare SYN to any port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 1, flags: syn}), true},
		{"v4 SYN+FIN to any port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: syn | policy.FlagFIN}), true},
		{"v4 SYN with options", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, ipv4Opts: 40}), true},
		{"v4 options, ACK to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: ack, ipv4Opts: 40}), false},
		{"v4 non-first fragment", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, fragOff: 1}), false},
		{"v4 last fragment", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, fragOff: 100}), false},
		{"v4 first fragment", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, moreFrags: true}), true},
		{"v4 ICMP", ipFrame(testPkt{src: v4a, dst: v4b, proto: 1, dport: 7000}), false},
		{"v6 ICMPv6", ipFrame(testPkt{src: v6a, dst: v6b, proto: 58, dport: 7000}), false},
		{"v6 hop-by-hop to user space", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 22, flags: ack, ext: []uint8{0}}), true},
		{"v6 fragment header to user space", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 53, ext: []uint8{44}, fragOff: 3}), true},
		{"v6 ESP", ipFrame(testPkt{src: v6a, dst: v6b, proto: 50, ext: nil}), false},
		{"ARP", frame(pktHost, 0x0806, make([]byte, 28)), false},
		{"other ethertype", frame(pktHost, 0x88cc, ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn})[14:]), false},
		{"outgoing", frame(4, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()), false},
		{"otherhost", frame(3, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()), false},
		{"broadcast", frame(1, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000}.build()), false},
		{"multicast", frame(2, etherIPv6, testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000}.build()), false},
		{"v4 truncated before ports", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, truncateTo: 21}), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := runRaw(t, testPolicy(), tt.frame); (got > 0) != tt.pass {
				t.Errorf("filter returned %d, want pass=%v", got, tt.pass)
			}
		})
	}
}

// TestFilterSPA: the knock filter leaves SPA ports to the SPA socket; an
// SPA door does not change what it keeps of other packets.
func TestFilterSPA(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	p.Doors = append(p.Doors, policy.Door{Name: "spa", Open: []policy.PortProto{{Port: 23, Proto: policy.TCP}}, SPA: &policy.SPA{Port: 62201}})
	for _, tt := range []struct {
		name string
		pkt  testPkt
		want int
	}{
		{"v4 UDP to SPA port", testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 1500}, 0},
		{"v6 UDP to SPA port", testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, payload: 200}, 0},
		{"v6 UDP with hop-by-hop", testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, payload: 200, ext: []uint8{0}}, snapExt},
		{"v4 UDP to knock port keeps the small snap", testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, payload: 1000}, snapPlain},
		{"v4 TCP to SPA port", testPkt{src: v4a, dst: v4b, proto: 6, dport: 62201, flags: ack}, 0},
		{"v4 bare SYN to SPA port", testPkt{src: v4a, dst: v4b, proto: 6, dport: 62201, flags: syn}, snapPlain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := runRaw(t, p, ipFrame(tt.pkt)); got != tt.want {
				t.Errorf("filter returned %d, want %d", got, tt.want)
			}
		})
	}
}

// TestFilterSnapsFitFrames: every snap length the knock filter returns,
// whatever the policy, fits a knock ring frame with room to spare, and
// the SPA filter's fit an SPA frame.
func TestFilterSnapsFitFrames(t *testing.T) {
	t.Parallel()
	withSPA := testPolicy()
	withSPA.Doors = append(withSPA.Doors, policy.Door{Name: "spa", SPA: &policy.SPA{Port: 62201}})
	for _, p := range []*policy.Policy{testPolicy(), totpPolicy(), manyPorts(40), manyPorts(3000), withSPA, {}} {
		prog, err := Filter(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := maxSnap(prog); m > knockSnapMax || m >= knockFrame-tpNetDatagram {
			t.Errorf("knock filter keeps %d bytes; knockSnapMax %d, frame room %d", m, knockSnapMax, knockFrame-tpNetDatagram)
		}
		if prog, err = SPAFilter(p); err != nil {
			t.Fatal(err)
		}
		if m := maxSnap(prog); m > snapSPA || m >= spaFrame-tpNetDatagram {
			t.Errorf("SPA filter keeps %d bytes; frame room %d", m, spaFrame-tpNetDatagram)
		}
	}
	if knockFrame%tpAlign != 0 || spaFrame%tpAlign != 0 {
		t.Errorf("frames %d and %d are not multiples of %d", knockFrame, spaFrame, tpAlign)
	}
}

func runRaw(t *testing.T, p *policy.Policy, frame []byte) int {
	t.Helper()
	prog, err := filterRaw(p)
	if err != nil {
		t.Fatalf("filterRaw: %v", err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return n
}

// TestFilterSnap checks that accepts copy a bounded prefix.
func TestFilterSnap(t *testing.T) {
	t.Parallel()
	big := ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000, payload: 1400})
	if got := runRaw(t, testPolicy(), big); got != snapPlain {
		t.Errorf("UDP to knock port: accept %d bytes, want %d", got, snapPlain)
	}
	ext := ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 8000, ext: []uint8{0}, payload: 1400})
	if got := runRaw(t, testPolicy(), ext); got != snapExt {
		t.Errorf("v6 with extension header: accept %d bytes, want %d", got, snapExt)
	}
}

// TestFilterSameGenerator shows that the Datagram program is the Raw
// program with the extension loads and the base offset swapped, so the VM
// tests of filterRaw test Filter's logic.
func TestFilterSameGenerator(t *testing.T) {
	t.Parallel()
	for _, p := range []*policy.Policy{testPolicy(), manyPorts(40), manyPorts(3000), {}} {
		dg, err := Filter(p)
		if err != nil {
			t.Fatalf("Filter: %v", err)
		}
		raw, err := filterRaw(p)
		if err != nil {
			t.Fatalf("filterRaw: %v", err)
		}
		if _, err := bpf.Assemble(dg); err != nil {
			t.Fatalf("Assemble: %v", err)
		}
		var exts int
		mapped := make([]bpf.Instruction, len(dg))
		for i, ins := range dg {
			switch ins := ins.(type) {
			case bpf.LoadExtension:
				exts++
				switch ins.Num {
				case bpf.ExtType:
					mapped[i] = rawTest.pktType
				case bpf.ExtProto:
					mapped[i] = rawTest.etherType
				default:
					t.Fatalf("unexpected extension %v", ins.Num)
				}
			case bpf.LoadAbsolute:
				ins.Off += rawTest.base
				mapped[i] = ins
			case bpf.LoadIndirect:
				ins.Off += rawTest.base
				mapped[i] = ins
			case bpf.LoadMemShift:
				ins.Off += rawTest.base
				mapped[i] = ins
			default:
				mapped[i] = ins
			}
		}
		if exts != 2 {
			t.Errorf("Datagram program has %d extension loads, want 2", exts)
		}
		if diff := cmp.Diff(raw, mapped); diff != "" {
			t.Errorf("Raw program differs from the mapped Datagram program (-raw +mapped):\n%s", diff)
		}
	}
}

// manyPorts is a policy with n TCP and n UDP knock ports, 10000 up.
func manyPorts(n int) *policy.Policy {
	var d policy.Door
	for i := range n {
		d.Sequence = append(d.Sequence,
			policy.PortProto{Port: uint16(10000 + 2*i), Proto: policy.TCP},
			policy.PortProto{Port: uint16(10000 + 2*i), Proto: policy.UDP})
	}
	return &policy.Policy{Doors: []policy.Door{d}}
}

func TestFilterManyPorts(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 100, maxInlinePorts / 2, maxInlinePorts/2 + 1, 3000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			p := manyPorts(n)
			prog, err := filterRaw(p)
			if err != nil {
				t.Fatalf("filterRaw: %v", err)
			}
			if len(prog) > maxInstructions {
				t.Fatalf("%d instructions", len(prog))
			}
			last := uint16(10000 + 2*(n-1))
			inline := 2*n <= maxInlinePorts
			for _, tt := range []struct {
				port uint16
				pass bool
			}{
				{10000, true}, {last, true}, {9999, false}, {last + 1, false},
				{10001, !inline && n > 1}, // between two knock ports: only the range form passes it
			} {
				for _, proto := range []uint8{6, 17} {
					f := ipFrame(testPkt{src: v4a, dst: v4b, proto: proto, dport: tt.port, flags: ack})
					if got := runRaw(t, p, f); (got > 0) != tt.pass {
						t.Errorf("proto %d port %d: filter returned %d, want pass=%v", proto, tt.port, got, tt.pass)
					}
				}
			}
		})
	}
}

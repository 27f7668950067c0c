package capture

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/knock"
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

// tcpOnly is testPolicy without UDP steps; finPolicy adds a door with
// knockd's man-page flags "fin,!ack".
func tcpOnly() *policy.Policy {
	p := testPolicy()
	p.Doors[0].Sequence[1].Proto = policy.TCP
	return p
}

var finFlags = policy.TCPFlags{Mask: policy.FlagFIN | policy.FlagACK, Want: policy.FlagFIN}

func finPolicy() *policy.Policy {
	p := tcpOnly()
	p.Doors = append(p.Doors, policy.Door{
		Name:     "fin",
		Sequence: []policy.PortProto{{Port: 7100, Proto: policy.TCP}, {Port: 7200, Proto: policy.TCP}, {Port: 7300, Proto: policy.TCP}},
		TCPFlags: finFlags,
		Open:     []policy.PortProto{{Port: 23, Proto: policy.TCP}},
	})
	return p
}

const (
	fin  = policy.FlagFIN
	xmas = policy.FlagFIN | policy.FlagPSH | policy.FlagURG
)

// TestFilterRaw runs the filter in the VM. Since issue 11 it passes every
// packet that could be a step of some door at any port, not only at knock
// ports: UDP anywhere when a door has a UDP step, TCP whose flags pass a
// door's tcp_flags anywhere. ACKs and SYN+ACKs to knock ports, which the
// matcher ignores under the default flags, no longer pass.
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
		{"v4 UDP to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8001}), true},
		{"v6 UDP to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 53}), true},
		{"v4 UDP to port 1", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 1}), true},
		{"v6 UDP to port 65535", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 65535}), true},
		{"v4 UDP to a TCP knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 7000}), true},
		{"v4 ACK to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: ack}), false},
		{"v6 ACK to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 22, flags: ack}), false},
		{"v4 ACK to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: ack}), false},
		{"v4 SYN+ACK to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 443, flags: synAck}), false},
		{"v6 SYN+ACK to other port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 443, flags: synAck}), false},
		{"v4 SYN+ACK to knock port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 9001, flags: synAck}), false},
		{"v4 FIN to knock port, default flags", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: fin}), false},
		{"v4 NULL to knock port, default flags", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: 0}), false},
		{"v4 bare SYN to any port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: syn}), true},
		{"v6 bare SYN to any port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 1, flags: syn}), true},
		{"v4 SYN+FIN to any port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 22, flags: syn | policy.FlagFIN}), true},
		{"v4 SYN with options", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn, ipv4Opts: 40}), true},
		{"v4 options, UDP to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 22, ipv4Opts: 40}), true},
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
		{"outgoing UDP", frame(4, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 17, dport: 53}.build()), false},
		{"otherhost", frame(3, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn}.build()), false},
		{"otherhost UDP", frame(3, etherIPv6, testPkt{src: v6a, dst: v6b, proto: 17, dport: 53}.build()), false},
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

// TestFilterKnockTraffic: what passes follows the doors' protocols and
// flag filters, at any port, over IPv4 and IPv6, and Conn's user-space
// rule (wantSet) agrees with the program on every case.
func TestFilterKnockTraffic(t *testing.T) {
	t.Parallel()
	udpTOTP := tcpOnly()
	udpTOTP.Doors = append(udpTOTP.Doors, policy.Door{Name: "vault", TOTP: &policy.TOTP{Lo: 40000, Hi: 40999, Length: 4, Proto: policy.UDP},
		TCPFlags: finFlags, Open: []policy.PortProto{{Port: 2223, Proto: policy.TCP}}})
	tcpTOTP := tcpOnly()
	tcpTOTP.Doors = append(tcpTOTP.Doors, policy.Door{Name: "vault", TOTP: &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Proto: policy.TCP},
		TCPFlags: finFlags, Open: []policy.PortProto{{Port: 2223, Proto: policy.TCP}}})
	udpClose := tcpOnly()
	udpClose.Doors[0].CloseSequence = []policy.PortProto{{Port: 9001, Proto: policy.UDP}}
	oneTime := tcpOnly()
	oneTime.Doors = append(oneTime.Doors, policy.Door{Name: "o", OneTime: []policy.OneTimeSeq{
		{Steps: []policy.PortProto{{Port: 1, Proto: policy.TCP}}}, {Steps: []policy.PortProto{{Port: 2, Proto: policy.UDP}}}},
		TCPFlags: policy.DefaultTCPFlags, Open: []policy.PortProto{{Port: 23, Proto: policy.TCP}}})
	spaOnly := &policy.Policy{Doors: []policy.Door{{Name: "spa", SPA: &policy.SPA{Port: 62201}, TCPFlags: policy.DefaultTCPFlags}}}
	for _, tt := range []struct {
		name  string
		p     *policy.Policy
		proto uint8
		flags uint8
		pass  bool
	}{
		{"tcp only: UDP dropped", tcpOnly(), 17, 0, false},
		{"tcp only: SYN passes", tcpOnly(), 6, syn, true},
		{"tcp only: FIN dropped", tcpOnly(), 6, fin, false},
		{"udp step: UDP passes", testPolicy(), 17, 0, true},
		{"udp in a close sequence: UDP passes", udpClose, 17, 0, true},
		{"udp in a later one-time line: UDP passes", oneTime, 17, 0, true},
		{"udp TOTP door: UDP passes", udpTOTP, 17, 0, true},
		{"udp TOTP door: its flags do not apply", udpTOTP, 6, fin, false},
		{"tcp TOTP door: its flags apply", tcpTOTP, 6, fin, true},
		{"tcp TOTP door: UDP dropped", tcpTOTP, 17, 0, false},
		{"spa only: UDP dropped", spaOnly, 17, 0, false},
		{"spa only: bare SYN passes", spaOnly, 6, syn, true},
		{"fin,!ack: FIN passes", finPolicy(), 6, fin, true},
		{"fin,!ack: Xmas passes", finPolicy(), 6, xmas, true},
		{"fin,!ack: FIN+ACK dropped", finPolicy(), 6, fin | ack, false},
		{"fin,!ack: NULL dropped", finPolicy(), 6, 0, false},
		{"fin,!ack: SYN still passes", finPolicy(), 6, syn, true},
		{"fin,!ack: ACK dropped", finPolicy(), 6, ack, false},
		{"fin,!ack: UDP dropped", finPolicy(), 17, 0, false},
	} {
		w := newWantSet(tt.p)
		for _, src := range [][2]netip.Addr{{v4a, v4b}, {v6a, v6b}} {
			for _, port := range []uint16{1, 22, 7000, 7100, 8000, 25000, 40500, 65535} {
				pkt := testPkt{src: src[0], dst: src[1], proto: tt.proto, dport: port, flags: tt.flags}
				if got := runRaw(t, tt.p, ipFrame(pkt)); (got > 0) != tt.pass {
					t.Errorf("%s: %v port %d: filter returned %d, want pass=%v", tt.name, src[0], port, got, tt.pass)
				}
				var h knock.Hit
				if !Decode(pkt.build(), &h) {
					t.Fatalf("%s: Decode failed", tt.name)
				}
				if got := w.wanted(&h); got != tt.pass {
					t.Errorf("%s: %v port %d: wantSet says %v, want %v", tt.name, src[0], port, got, tt.pass)
				}
			}
		}
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
		{"v4 UDP to SPA port + 1", testPkt{src: v4a, dst: v4b, proto: 17, dport: 62202, payload: 200}, snapPlain},
		{"v4 bare SYN to SPA port", testPkt{src: v4a, dst: v4b, proto: 6, dport: 62201, flags: syn}, snapPlain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := runRaw(t, p, ipFrame(tt.pkt)); got != tt.want {
				t.Errorf("filter returned %d, want %d", got, tt.want)
			}
		})
	}
	if got := runRaw(t, testPolicy(), ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 200})); got != snapPlain {
		t.Errorf("without SPA doors the filter returned %d for port 62201, want %d (a UDP door's small snap)", got, snapPlain)
	}
	spaTCP := tcpOnly()
	spaTCP.Doors = append(spaTCP.Doors, p.Doors[1])
	for _, tt := range []struct {
		port uint16
		want int
	}{{62201, 0}, {62202, 0}, {8000, 0}} {
		if got := runRaw(t, spaTCP, ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: tt.port, payload: 200})); got != tt.want {
			t.Errorf("SPA with TCP-only knocks, UDP to %d: filter returned %d, want %d", tt.port, got, tt.want)
		}
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
	for _, p := range []*policy.Policy{testPolicy(), tcpOnly(), finPolicy(), manyPorts(40), allFlags(), {}} {
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
// totpPolicy is testPolicy with a TCP and a UDP TOTP door.
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

func manyPorts(n int) *policy.Policy {
	d := policy.Door{TCPFlags: policy.DefaultTCPFlags}
	for i := range n {
		d.Sequence = append(d.Sequence,
			policy.PortProto{Port: uint16(10000 + 2*i), Proto: policy.TCP},
			policy.PortProto{Port: uint16(10000 + 2*i), Proto: policy.UDP})
	}
	return &policy.Policy{Doors: []policy.Door{d}}
}

// allFlags is a policy with one TCP door for each of the 3^6 flag filters.
func allFlags() *policy.Policy {
	p := &policy.Policy{}
	for mask := range 64 {
		for want := range 64 {
			if want&^mask != 0 {
				continue
			}
			p.Doors = append(p.Doors, policy.Door{
				Sequence: []policy.PortProto{{Port: uint16(1000 + len(p.Doors)), Proto: policy.TCP}},
				TCPFlags: policy.TCPFlags{Mask: uint8(mask), Want: uint8(want)},
			})
		}
	}
	return p
}

// TestFilterSize: the program does not grow with the knock ports (every
// port passes anyway), and stays under the kernel's limit with every
// possible flag filter, each of which it applies.
func TestFilterSize(t *testing.T) {
	t.Parallel()
	one, err := filterRaw(manyPorts(1))
	if err != nil {
		t.Fatal(err)
	}
	many, err := filterRaw(manyPorts(20000))
	if err != nil {
		t.Fatal(err)
	}
	if len(many) != len(one) || len(one) > 64 {
		t.Errorf("1 and 20000 knock ports give %d and %d instructions, want the same, at most 64", len(one), len(many))
	}
	p := allFlags()
	if n := len(p.KnockTraffic().TCP); n != 729 {
		t.Fatalf("%d distinct flag filters, want 3^6", n)
	}
	prog, err := filterRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) > maxInstructions {
		t.Fatalf("%d instructions", len(prog))
	}
	// With every filter, every flag byte passes (mask 0 passes all); with
	// each single door, exactly the bytes its filter passes.
	for flags := range 256 {
		f := ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 4242, flags: uint8(flags)})
		if got := runRaw(t, p, f); got == 0 {
			t.Errorf("flags %#02x dropped with every filter in the policy", flags)
		}
	}
	for _, d := range p.Doors[:40] {
		one := &policy.Policy{Doors: []policy.Door{d}}
		for flags := range 256 {
			want := d.TCPFlags.Match(uint8(flags)) || policy.DefaultTCPFlags.Match(uint8(flags))
			f := ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 4242, flags: uint8(flags)})
			if got := runRaw(t, one, f); (got > 0) != want {
				t.Errorf("filter %s, flags %#02x: returned %d, want pass=%v", d.TCPFlags, flags, got, want)
			}
		}
	}
}

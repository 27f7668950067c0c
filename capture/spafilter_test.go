package capture

import (
	"fmt"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

func runSPARaw(t *testing.T, p *policy.Policy, frame []byte) int {
	t.Helper()
	prog, err := spaFilterRaw(p)
	if err != nil {
		t.Fatalf("spaFilterRaw: %v", err)
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

func TestSPAFilterRaw(t *testing.T) {
	t.Parallel()
	p := spaPolicy()
	p.Doors = append(p.Doors, policy.Door{Name: "spa2", SPA: &policy.SPA{Port: 9}})
	chain8 := []uint8{0, 43, 44, 51, 60, 135, 139, 140}
	for _, tt := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"v4 UDP to SPA port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, payload: 300}), snapSPA},
		{"v4 UDP to second SPA port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 9, payload: 300}), snapSPA},
		{"v4 options", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, ipv4Opts: 40, payload: 300}), snapSPA},
		{"v6 UDP to SPA port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, payload: 300}), snapSPA},
		{"v6 hop-by-hop", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: []uint8{0}, extLen: 3}), snapSPA},
		{"v6 first fragment", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: []uint8{44}, moreFrags: true}), snapSPA},
		{"v6 AH", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: []uint8{51}}), snapSPA},
		{"v6 eight extension headers", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: chain8}), snapSPA},
		{"v6 nine extension headers", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: append([]uint8{60}, chain8...)}), 0},
		{"v6 non-first fragment", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: []uint8{44}, fragOff: 2}), 0},
		{"v6 chain to another port", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62202, ext: []uint8{0, 60}}), 0},
		{"v6 chain to TCP", ipFrame(testPkt{src: v6a, dst: v6b, proto: 6, dport: 62201, flags: syn, ext: []uint8{0}}), 0},
		{"v6 chain truncated", ipFrame(testPkt{src: v6a, dst: v6b, proto: 17, dport: 62201, ext: []uint8{0}, extLen: 10, truncateTo: 80}), 0},
		{"v6 ESP", ipFrame(testPkt{src: v6a, dst: v6b, proto: 50}), 0},
		{"v4 UDP to other port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 8000}), 0},
		{"v4 TCP to SPA port", ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 62201, flags: syn}), 0},
		{"v4 first fragment", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, moreFrags: true}), 0},
		{"v4 later fragment", ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201, fragOff: 10}), 0},
		{"outgoing", frame(4, etherIPv4, testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201}.build()), 0},
		{"ARP", frame(pktHost, 0x0806, make([]byte, 28)), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := runSPARaw(t, p, tt.frame); got != tt.want {
				t.Errorf("SPA filter returned %d, want %d", got, tt.want)
			}
		})
	}
	if got := runSPARaw(t, testPolicy(), ipFrame(testPkt{src: v4a, dst: v4b, proto: 17, dport: 62201})); got != 0 {
		t.Errorf("without SPA doors the SPA filter returned %d", got)
	}
}

// TestSPAFilterAgreesWithDecode runs packets with every short chain of
// extension headers through the SPA filter and through Decode: the filter
// passes exactly those Decode reads as UDP to an SPA port.
func TestSPAFilterAgreesWithDecode(t *testing.T) {
	t.Parallel()
	p := spaPolicy()
	set := newSPAWantSet(p)
	exts := []uint8{0, 43, 44, 51, 60, 135, 6, 17}
	var chains [][]uint8
	var grow func(c []uint8)
	grow = func(c []uint8) {
		chains = append(chains, c)
		if len(c) == 3 {
			return
		}
		for _, e := range exts {
			grow(append(append([]uint8(nil), c...), e))
		}
	}
	grow(nil)
	n := 0
	for _, c := range chains {
		for _, proto := range []uint8{6, 17} {
			for _, port := range []uint16{62201, 62202} {
				for _, pkt := range []testPkt{
					{src: v6a, dst: v6b, proto: proto, dport: port, flags: syn, ext: c, payload: 150},
					{src: v6a, dst: v6b, proto: proto, dport: port, flags: syn, ext: c, extLen: 2, moreFrags: true},
					{src: v6a, dst: v6b, proto: proto, dport: port, flags: syn, ext: c, fragOff: 1},
				} {
					b := pkt.build()
					var h knock.Hit
					want := Decode(b, &h) && set.wanted(&h)
					if got := runSPARaw(t, p, frame(pktHost, etherIPv6, b)) > 0; got != want {
						t.Errorf("%s: filter passes %v, Decode says SPA %v", fmt.Sprintf("%+v", pkt), got, want)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d packets", n)
}

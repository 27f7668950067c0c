package capture

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// sweepPolicy has the doors of the adversarial e2e suite
// (e2e/attack_sweep_test.go): three UDP steps, TCP and UDP mixed, knockd's
// man-page flags "fin,!ack", and the default SYN door. No door's ports lie
// between another door's ports of the same protocol, so that the filter of
// e7b785e (knock ports only) let an ascending sweep walk them. seq_timeout
// is the longest allowed: no sequence is rescued by a timeout.
func sweepPolicy() *policy.Policy {
	d := func(name, seq string, flags policy.TCPFlags) policy.Door {
		var steps []policy.PortProto
		for _, s := range strings.Split(seq, ",") {
			pp, err := policy.ParsePortProto(s)
			if err != nil {
				panic(err)
			}
			steps = append(steps, pp)
		}
		return policy.Door{Name: name, Sequence: steps, SeqTimeout: policy.MaxSeqTimeout, TCPFlags: flags,
			Open: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, OpenFor: time.Minute}
	}
	return &policy.Policy{Doors: []policy.Door{
		d("udp", "7000/udp,8000/udp,9000/udp", policy.DefaultTCPFlags),
		d("fin", "12000/tcp,13000/tcp,14000/tcp", finFlags),
		d("syn", "20000/tcp,21000/tcp,22000/tcp", policy.DefaultTCPFlags),
		d("mixed", "30000/tcp,31000/udp,32000/tcp", policy.DefaultTCPFlags),
	}}
}

// scanKind is what one probe of a scan is.
type scanKind struct {
	name  string
	proto uint8
	flags uint8
}

var scanKinds = []scanKind{
	{"UDP", 17, 0}, {"SYN", 6, syn}, {"FIN", 6, fin}, {"NULL", 6, 0}, {"Xmas", 6, xmas},
}

// sweepOrders returns the port orders of a full scan: ascending,
// descending, and random permutations. The first two random seeds are the
// first whose order puts the UDP door's ports in its order, with no other
// door's UDP port between them: the order in which the filter of e7b785e
// opened that door. The third is whatever seed 1 gives.
func sweepOrders() []struct {
	name  string
	ports []uint16
} {
	type order = struct {
		name  string
		ports []uint16
	}
	asc := make([]uint16, 65535)
	for i := range asc {
		asc[i] = uint16(i + 1)
	}
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	out := []order{{"ascending", asc}, {"descending", desc}}
	perm := func(seed uint64) []uint16 {
		p := slices.Clone(asc)
		rand.New(rand.NewPCG(seed, 0x5e5a3e)).Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		return p
	}
	for seed := uint64(2); len(out) < 4; seed++ {
		p := perm(seed)
		at := func(port uint16) int { return slices.Index(p, port) }
		if a, b, c, m := at(7000), at(8000), at(9000), at(31000); a < b && b < c && (m < a || m > c) {
			out = append(out, order{fmt.Sprintf("random seed %d", seed), p})
		}
	}
	return append(out, order{"random seed 1", perm(1)})
}

// TestSweepThroughFilter plays full scans that know nothing (UDP, SYN, FIN,
// NULL, Xmas; ascending, descending, random; IPv4 and IPv6; every port
// 1..65535) through the whole path a packet takes: the filter program in
// the VM, Decode, Conn's user-space rule and the matcher. No door opens.
// On e7b785e the filter passed UDP and non-SYN TCP only to knock ports, and
// the UDP door and the fin,!ack door opened.
func TestSweepThroughFilter(t *testing.T) {
	t.Parallel()
	p := sweepPolicy()
	prog, err := filterRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	w := newWantSet(p)
	orders := sweepOrders()
	for _, fam := range [][2]netip.Addr{{v4a, v4b}, {v6a, v6b}} {
		for _, k := range scanKinds {
			f := ipFrame(testPkt{src: fam[0], dst: fam[1], proto: k.proto, sport: 40000, flags: k.flags})
			portAt := 14 + 20 + 2
			if fam[0].Is6() {
				portAt = 14 + 40 + 2
			}
			for _, o := range orders {
				m := knock.New(p, knock.Config{MaxEntries: 64})
				now := time.Unix(1_700_000_000, 0)
				passed, resets := 0, 0
				for _, port := range o.ports {
					binary.BigEndian.PutUint16(f[portAt:], port)
					n, err := vm.Run(f)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						continue
					}
					var h knock.Hit
					if !Decode(f[14:min(len(f), 14+n)], &h) || !w.wanted(&h) {
						t.Fatalf("%s %s %v port %d: passed by the filter, refused in user space", k.name, o.name, fam[0], port)
					}
					passed++
					now = now.Add(10 * time.Microsecond) // 100 kpps
					for _, d := range m.Observe(h, now) {
						switch d.Kind {
						case knock.Open:
							t.Errorf("%s scan, %s, %v: door %q opened at port %d", k.name, o.name, fam[0], d.Door.Name, port)
						case knock.Reset:
							resets++
						}
					}
				}
				// What must reach the matcher: every probe that some door
				// counts, at every port.
				want := 0
				switch k.name {
				case "UDP", "SYN", "FIN", "Xmas":
					want = 65535
				}
				if passed != want {
					t.Errorf("%s scan, %s, %v: %d probes passed, want %d", k.name, o.name, fam[0], passed, want)
				}
				if want > 0 && resets == 0 {
					t.Errorf("%s scan, %s, %v: no reset: the matcher saw no step", k.name, o.name, fam[0])
				}
			}
		}
	}
}

package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
	"github.com/sesame-knock/sesame/totp"
)

// fzCap is the matchers' entry cap in FuzzPipeline: small, so that the
// fuzzer fills it.
const fzCap = 8

// fzConn is a Conn without a socket, for its user-space half (wanted).
func fzConn(p *policy.Policy) *Conn {
	c := &Conn{}
	c.want.Store(newWantSet(p))
	return c
}

// fzHist is one hit a matcher saw, for the independent checks of opens.
type fzHist struct {
	step  policy.PortProto
	flags uint8
	at    time.Time
}

// FuzzPipeline runs the packet-to-decision path as a whole: each frame goes
// through the capture filter (filterRaw, in x/net/bpf's VM), the snap
// length the filter returns, Decode, Conn.wanted, then the static and the
// TOTP matchers, as the daemon feeds them. It checks that:
//
//   - the filter and user space agree: a frame that Decode and wanted turn
//     into a hit when they see all of it is never dropped by the filter, and
//     the prefix the filter keeps decodes to the same hit (an SPA payload of
//     at most spa.MaxWireLen bytes included); the exceptions are frames whose
//     IP version disagrees with their ethertype (undefined) and IPv6 frames
//     with extension headers longer than the filter keeps;
//   - the matchers stay within their entry cap;
//   - every Open is backed by the source's own hits: a static door's steps
//     in order within seq_timeout, passing its tcp_flags; a TOTP door's
//     sequence of one of its clients for a counter within the window, and
//     never for a sequence that opened before (burned).
func FuzzPipeline(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fzRun(t, data) })
}

// fzCounts is what one FuzzPipeline input did, for the seeds' test.
type fzCounts struct {
	hits, opens, totpOpens, replays int
}

// fzRun is FuzzPipeline's body.
func fzRun(t *testing.T, data []byte) fzCounts {
	b := fzIn(data)
	p := fzPolicy(&b)
	evs := fzEvents(&b, p)
	prog, err := filterRaw(p)
	if err != nil {
		t.Fatalf("filterRaw: %v", err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	c := fzConn(p)
	m := knock.New(p, knock.Config{MaxEntries: fzCap})
	tm := knock.NewTOTP(p, knock.Config{MaxEntries: fzCap})
	hist := map[netip.Addr][]fzHist{}
	burned := map[string]bool{}
	var n fzCounts
	for i, e := range evs {
		if e.frame == nil {
			m.Expire(e.now)
			tm.Expire(e.now)
			continue
		}
		h, ok := fzCheckFrame(t, vm, c, e.frame)
		if !ok {
			continue
		}
		n.hits++
		src := h.Src.Unmap()
		hist[src] = append(hist[src], fzHist{h.Step(), h.Flags, e.now})
		for _, d := range m.Observe(h, e.now) {
			fzCheckDecision(t, i, p, h, d)
			if d.Kind != knock.Open && d.Kind != knock.Close {
				continue
			}
			if d.Kind == knock.Open {
				n.opens++
			}
			steps := d.Door.Sequence
			if d.Close {
				steps = d.Door.CloseSequence
			}
			if !fzSubseq(hist[src], d.Door, steps, e.now) {
				t.Fatalf("event %d: %v of door %s for %s without its steps within seq_timeout; hits %+v", i, d.Kind, d.Door.Name, src, hist[src])
			}
		}
		for _, d := range tm.Observe(h, e.now) {
			fzCheckDecision(t, i, p, h, d)
			switch {
			case d.Kind == knock.Open:
				n.totpOpens++
				fzCheckTOTPOpen(t, i, d, hist[src], e.now, burned)
			case d.Reason == knock.Replayed:
				n.replays++
			}
		}
		if m.Len() > fzCap || tm.Len() > fzCap {
			t.Fatalf("event %d: matchers track %d and %d entries, cap %d", i, m.Len(), tm.Len(), fzCap)
		}
	}
	if got := m.Stats().Opens; got != uint64(n.opens) {
		t.Errorf("static matcher counts %d opens, returned %d", got, n.opens)
	}
	if got := tm.Stats().Opens; got != uint64(n.totpOpens) {
		t.Errorf("TOTP matcher counts %d opens, returned %d", got, n.totpOpens)
	}
	return n
}

// TestPipelineSeeds checks that FuzzPipeline's seeds do what they say, so
// that the fuzzer starts from inputs that reach every matcher's opens.
func TestPipelineSeeds(t *testing.T) {
	t.Parallel()
	want := []fzCounts{
		{hits: 9, opens: 3},
		{hits: 6, totpOpens: 2, replays: 1},
		{hits: 2},
		{hits: 1, opens: 1},
	}
	for i, s := range fzSeeds() {
		if got := fzRun(t, s); got != want[i] {
			t.Errorf("seed %d: %+v, want %+v", i, got, want[i])
		}
	}
}

// fzCheckFrame runs one frame the daemon's way (filter, snap, Decode,
// wanted) and the reference way (all of the frame, no filter), checks that
// they agree, and returns the daemon's hit.
func fzCheckFrame(t *testing.T, vm *bpf.VM, c *Conn, frame []byte) (knock.Hit, bool) {
	snap, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("filter: %v", err)
	}
	var h knock.Hit
	ok := false
	if snap > 0 && len(frame) >= 14 {
		ip := frame[14:]
		ok = Decode(ip[:min(snap, len(ip))], &h) && c.wanted(&h)
	}
	if len(frame) < 15 || frame[5] != pktHost {
		if ok {
			t.Fatalf("filter passed a frame that is not for this host: % x", frame)
		}
		return h, ok
	}
	ip := frame[14:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherIPv4:
		if ip[0]>>4 != 4 {
			return h, ok // undefined: the version disagrees with the ethertype
		}
	case etherIPv6:
		if ip[0]>>4 != 6 {
			return h, ok
		}
	default:
		if ok {
			t.Fatalf("filter passed a frame that is not IP: % x", frame)
		}
		return h, ok
	}
	var ref knock.Hit
	refOK := Decode(ip, &ref) && c.wanted(&ref)
	longExt := ip[0]>>4 == 6 && len(ip) >= 40 && ip[6] != uint8(policy.TCP) && ip[6] != uint8(policy.UDP) && len(ip) > snap
	switch {
	case refOK && snap == 0:
		t.Fatalf("filter dropped a frame that user space takes as hit %+v: % x", ref, frame)
	case refOK && !ok && !longExt:
		t.Fatalf("the %d bytes the filter keeps do not decode to hit %+v: % x", snap, ref, frame)
	case ok && !refOK:
		t.Fatalf("the %d bytes the filter keeps decode to hit %+v, all of the frame to none: % x", snap, h, frame)
	case ok:
		if h.Src != ref.Src || h.Dst != ref.Dst || h.Step() != ref.Step() || h.Flags != ref.Flags {
			t.Fatalf("filtered hit %+v, reference %+v: % x", h, ref, frame)
		}
		switch {
		case h.Payload != nil && !bytes.Equal(h.Payload, ref.Payload):
			t.Fatalf("payload of %d bytes differs from the reference's %d: % x", len(h.Payload), len(ref.Payload), frame)
		case h.Payload == nil && ref.Payload != nil && len(ref.Payload) <= spa.MaxWireLen && !longExt:
			t.Fatalf("SPA payload of %d bytes lost to the filter's %d-byte snap: % x", len(ref.Payload), snap, frame)
		}
	}
	return h, ok
}

// fzCheckDecision checks what every decision must hold.
func fzCheckDecision(t *testing.T, i int, p *policy.Policy, h knock.Hit, d knock.Decision) {
	if d.Src != h.Src.Unmap().WithZone("") {
		t.Fatalf("event %d: decision %v for %s on a hit from %s", i, d.Kind, d.Src, h.Src)
	}
	if fzDoorIndex(p, d.Door) < 0 {
		t.Fatalf("event %d: decision %v for a door not in the policy: %+v", i, d.Kind, d.Door)
	}
	if strings.HasPrefix(d.Kind.String(), "kind(") {
		t.Fatalf("event %d: decision of unknown kind %v", i, d.Kind)
	}
}

func fzDoorIndex(p *policy.Policy, d *policy.Door) int {
	for i := range p.Doors {
		if &p.Doors[i] == d {
			return i
		}
	}
	return -1
}

// fzSubseq reports whether the door's steps appear in order among the
// hits since now - seq_timeout that pass the door's tcp_flags, the last
// step being the newest hit.
func fzSubseq(hist []fzHist, d *policy.Door, steps []policy.PortProto, now time.Time) bool {
	pass := func(h fzHist) bool { return h.step.Proto != policy.TCP || d.TCPFlags.Match(h.flags) }
	if len(hist) == 0 || len(steps) == 0 || !pass(hist[len(hist)-1]) || hist[len(hist)-1].step != steps[len(steps)-1] {
		return false
	}
	k := len(steps) - 1
	for j := len(hist) - 1; j >= 0 && k >= 0; j-- {
		h := hist[j]
		if now.Sub(h.at) > d.SeqTimeout {
			break
		}
		if pass(h) && h.step == steps[k] {
			k--
		}
	}
	return k < 0
}

// fzCheckTOTPOpen checks a TOTP Open: the client's sequence for a counter
// in the door's window (from the start of seq_timeout to now, with skew)
// is among the source's recent hits, and not every such counter opened
// before.
func fzCheckTOTPOpen(t *testing.T, i int, d knock.Decision, hist []fzHist, now time.Time, burned map[string]bool) {
	tp := d.Door.TOTP
	ci := slices.IndexFunc(d.Door.Clients, func(c policy.Client) bool { return c.Name == d.Client })
	if tp == nil || ci < 0 {
		t.Fatalf("event %d: TOTP open of door %s for client %q", i, d.Door.Name, d.Client)
	}
	lo := totp.Counter(now.Add(-d.Door.SeqTimeout), tp.Step) - uint64(tp.Skew)
	hi := totp.Counter(now, tp.Step) + uint64(tp.Skew)
	var fits []string
	for ctr := lo; ctr <= hi; ctr++ {
		seq := totp.Sequence(d.Door.Clients[ci].Secret, ctr, tp.Lo, tp.Hi, tp.Length)
		steps := make([]policy.PortProto, len(seq))
		for j, port := range seq {
			steps[j] = policy.PortProto{Port: port, Proto: tp.Proto}
		}
		if fzSubseq(hist, d.Door, steps, now) {
			fits = append(fits, fmt.Sprintf("%s/%s/%d", d.Door.Name, d.Client, ctr))
		}
	}
	if len(fits) == 0 {
		t.Fatalf("event %d: TOTP open of door %s, client %s, without its sequence; hits %+v", i, d.Door.Name, d.Client, hist)
	}
	if !slices.ContainsFunc(fits, func(k string) bool { return !burned[k] }) {
		t.Fatalf("event %d: TOTP open of door %s, client %s, with a burned sequence %v", i, d.Door.Name, d.Client, fits)
	}
	if len(fits) == 1 {
		burned[fits[0]] = true
	}
}

// fzSeeds are a few inputs that open doors: a static door knocked over
// IPv4 and IPv6, a TOTP door's current sequence, an SPA-sized UDP packet,
// a wide door, and a raw frame.
func fzSeeds() [][]byte {
	// fzFrame's bytes: a (family, source, proto, extras), port selector,
	// flags selector, mutation; ports index fzPorts.
	v4tcp := func(sel byte) []byte { return []byte{0x04, 0x00, sel, 0x00, 0x00} }
	v6tcp := func(sel, src byte) []byte { return []byte{0x04, 0x01 | src<<1, sel, 0x00, 0x00} }
	v4udp := func(sel byte) []byte { return []byte{0x04, 0x08, sel, 0x00, 0x00} }
	v6udp := func(sel byte) []byte { return []byte{0x04, 0x09, sel, 0x00, 0x00} }
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	return [][]byte{
		// One static door, 7000/tcp,8000/udp,9000/tcp ("syn" filter), 2 s.
		// Then from 198.18.0.1 as a mapped IPv6 source and as IPv4, then
		// from an IPv6 source.
		cat([]byte{0x01, 0x02, 0x00, 0x01, 0x02, 0x07, 0x01, 0x00}, v4tcp(0), v4udp(1), v4tcp(2), []byte{0x03},
			v6tcp(0, 2), v4udp(1), v6tcp(2, 2), v6tcp(0, 0), v6udp(1), v6tcp(2, 0)),
		// A TOTP door (4 ports, length 2, TCP) with two clients: x then y.
		// A replay of x's sequence follows.
		cat([]byte{0x04, 0x1a, 0x03, 0x00}, v4tcp(0), v4tcp(1), v6tcp(2, 0), v6tcp(3, 0), v4tcp(0), v4tcp(1)),
		// SPA and wide doors: an SPA-sized UDP packet (the SPA socket's, no
		// knock hit), then SYNs to a wide knock step and to the port after
		// it (every bare SYN is a hit: the second resets the first).
		cat([]byte{0x18}, []byte{0x04, 0x08, 0xf0, 0xf2, 0xf9, 0x00, 0x03, 0x40},
			[]byte{0x04, 0x00, 0xf0, 0x75, 0x30, 0x00, 0x00}, []byte{0x04, 0x00, 0xf0, 0x75, 0x31, 0x00, 0x00}),
		// A raw frame: IPv4 SYN to 7000.
		cat([]byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x06}, []byte{0x02, 54, 0}, ipFrame(testPkt{src: v4a, dst: v4b, proto: 6, dport: 7000, flags: syn})),
	}
}

package capture

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

func udpPayload(addr string, payload []byte) func() error {
	return func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	}
}

// spaConn opens an SPA socket and a knock socket on a veth pair for a
// policy with knock port 8000/udp and an SPA door on 62201; it returns the
// Conns (closed when the test ends) and the sending side's namespace.
func spaConn(t *testing.T) (spaC, knockC *Conn, ns2 *nstest.NS) {
	t.Helper()
	nstest.RequireRoot(t)
	ns1, ns2 := vethPair(t)
	var err error
	if spaC, err = OpenSPA("vA", spaPolicy(), WithNetNS(ns1.FD())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spaC.Close() })
	if knockC, err = openIn(ns1.FD(), "vA", spaPolicy()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { knockC.Close() })
	return spaC, knockC, ns2
}

// TestConnSPAPayload sends full-size SPA payloads over IPv4 and IPv6 and
// checks that the SPA socket's ReadHit returns them whole, and nothing
// else, while the knock socket sees only the knocks, without payloads.
func TestConnSPAPayload(t *testing.T) {
	c, k, ns2 := spaConn(t)
	big4 := bytes.Repeat([]byte("A4+/"), 368) // 1472 bytes: the most a 1500-byte MTU carries unfragmented (IP fragments are not reassembled)
	big6 := bytes.Repeat([]byte("b6="), 470)  // 1410: fits the veth's 1500 MTU with IPv6+UDP headers
	send(t, ns2,
		udpPayload("192.0.2.1:62201", big4),
		udpPayload("192.0.2.1:8000", big4[:400]),
		dialSYN("192.0.2.1:62201"),
		udpDstOptsPayload("[2001:db8::1]:62201", 8, big6[:1000]),
		udpDstOptsPayload("[2001:db8::1]:62202", 8, big6[:1000]),
		udpPayload("[2001:db8::1]:62201", big6),
		udpPayload("192.0.2.1:62202", big4), // not an SPA port
		udp("192.0.2.1:8000"),
		udpPayload("192.0.2.1:62201", []byte("last")),
	)
	got := readUntilN(t, c, 4)
	want := []payloadHit{
		{netip.MustParseAddr("192.0.2.2"), 62201, policy.UDP, big4},
		{netip.MustParseAddr("2001:db8::2"), 62201, policy.UDP, big6[:1000]},
		{netip.MustParseAddr("2001:db8::2"), 62201, policy.UDP, big6},
		{netip.MustParseAddr("192.0.2.2"), 62201, policy.UDP, []byte("last")},
	}
	for i, w := range want {
		g := got[i]
		if g.Src != w.Src || g.Port != w.Port || g.Proto != policy.UDP || !bytes.Equal(g.payload, w.payload) {
			t.Errorf("SPA hit %d = %v:%d (%d payload bytes), want %v:%d (%d)", i, g.Src, g.Port, len(g.payload), w.Src, w.Port, len(w.payload))
		}
	}
	// The knock socket: the bare SYN and every UDP datagram but those to
	// the SPA port (a door has a UDP step: any UDP port counts), no
	// payload.
	got = readUntilN(t, k, 5)
	for i, w := range []payloadHit{
		{netip.MustParseAddr("192.0.2.2"), 8000, policy.UDP, nil},
		{netip.MustParseAddr("192.0.2.2"), 62201, policy.TCP, nil},
		{netip.MustParseAddr("2001:db8::2"), 62202, policy.UDP, nil},
		{netip.MustParseAddr("192.0.2.2"), 62202, policy.UDP, nil},
		{netip.MustParseAddr("192.0.2.2"), 8000, policy.UDP, nil},
	} {
		if g := got[i]; g.Src != w.Src || g.Port != w.Port || g.Proto != w.Proto || g.payload != nil {
			t.Errorf("knock hit %d = %+v, want %+v", i, g, w)
		}
	}
	for _, conn := range []*Conn{c, k} {
		if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		var h knock.Hit
		if err := conn.ReadHit(&h); err == nil {
			t.Errorf("unexpected hit %+v", h)
		}
	}
}

type payloadHit struct {
	Src     netip.Addr
	Port    uint16
	Proto   policy.Proto
	payload []byte
}

// readUntilN reads n hits, copying each payload (it aliases the buffer).
func readUntilN(t *testing.T, c *Conn, n int) []payloadHit {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var out []payloadHit
	for len(out) < n {
		var h knock.Hit
		if err := c.ReadHit(&h); err != nil {
			t.Fatalf("ReadHit after %d hits %+v: %v", len(out), out, err)
		}
		out = append(out, payloadHit{Src: h.Src, Port: h.Port, Proto: h.Proto, payload: bytes.Clone(h.Payload)})
	}
	return out
}

// TestConnSPAPayloadBatches: SPA payloads read in batches (ReadHits) each
// keep their own bytes until the next read. Several SPA packets wait in
// the ring at once; a batch must end after the first, or the next one's
// copy would overwrite its payload.
func TestConnSPAPayloadBatches(t *testing.T) {
	c, _, ns2 := spaConn(t)
	if !c.Ring() {
		t.Fatal("want the ring read path (the default)")
	}
	var sends []func() error
	var want [][]byte
	for i := range 6 {
		pl := bytes.Repeat([]byte{byte('a' + i)}, 200+40*i)
		if i == 3 {
			pl = []byte("short-spa-payload")
		}
		want = append(want, pl)
		sends = append(sends, udpPayload("192.0.2.1:62201", pl), udpPayload("192.0.2.1:62201", []byte("x")))
		want = append(want, []byte("x"))
	}
	send(t, ns2, sends...)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	batch := make([]knock.Hit, 64)
	for reads := 0; len(got) < len(want) && reads < 100; reads++ {
		n, err := c.ReadHits(batch)
		if err != nil {
			t.Fatalf("ReadHits after %d payloads: %v", len(got), err)
		}
		withPayload := 0
		for _, h := range batch[:n] {
			if h.Port == 62201 {
				got = append(got, bytes.Clone(h.Payload))
				withPayload++
			}
		}
		if withPayload > 1 {
			t.Errorf("a batch held %d SPA payloads; want at most one (they share the read buffer)", withPayload)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d SPA payloads, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("payload %d = %q…(%d bytes), want %q…(%d bytes)", i, got[i][:min(8, len(got[i]))], len(got[i]), want[i][:8], len(want[i]))
		}
	}
}

package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/spoof"
	"github.com/sesame-knock/sesame/logevent"
)

// Attacker's tests for issue 11 item 2 ("one flood locks out every door")
// and item 6 (loopback), against the real daemon. The attacker sits in the
// stranger namespace and forges source addresses from 198.18.0.0/15 (and
// its victims' addresses); the server routes its answers to 198.18.0.0/15
// towards the stranger, whose kernel drops them: the attacker is blind.

// spoofedSrc is the i-th address of 198.18.0.0/15.
func spoofedSrc(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

// spoofer returns a sender in the stranger namespace that writes frames to
// the server's interface, and routes the server's answers to the spoofed
// range towards the stranger.
func spoofer(t *testing.T, e *env) *spoof.Sender {
	t.Helper()
	var mac net.HardwareAddr
	if err := e.Server.Do(func() error {
		ifi, err := net.InterfaceByName(IfServerToStranger)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var s *spoof.Sender
	if err := e.Stranger.Do(func() error {
		var err error
		s, err = spoof.Open(IfPeer, mac)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.Server.Exec(t, "ip", "route", "add", "198.18.0.0/15", "via", Stranger4.String())
	return s
}

// sshSteps is seqSSH as the spoofer sends it.
var sshSteps = []spoof.Step{{Port: 7000, Proto: unix.IPPROTO_TCP}, {Port: 8000, Proto: unix.IPPROTO_UDP}, {Port: 9000, Proto: unix.IPPROTO_TCP}}

// in lists the elements of one set (e.g. pend4_ssh).
func (e *env) in(t *testing.T, set string) []Element {
	t.Helper()
	var out []Element
	all, err := Grants(e.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, el := range all {
		if el.Set == set {
			out = append(out, el)
		}
	}
	return out
}

// hasGrant reports whether addr has a grant for port of kind ("" for any)
// in any door's set.
func (e *env) hasGrant(t *testing.T, kind string, addr netip.Addr, port uint16) bool {
	t.Helper()
	for _, el := range e.grants(t, addr) {
		if el.Addr == addr && el.Port == port && (kind == "" || el.Kind() == kind) {
			return true
		}
	}
	return false
}

// (a) A spoofed flood completes the static door's sequence from thousands
// of sources (open_for 1h, max_grants 256). The door's pending set fills
// and churns; the legitimate client's knock still opens and its real TCP
// connect succeeds and is confirmed; a TOTP door, an SPA door, a one-time
// door and `sesame grant` on another door all still work, each grant
// landing (so no TOTP code or one-time line is used up for nothing); no
// spoofed source ever holds a confirmed grant.
//
// On e7b785e every grant shared one set of 65536 per family: a flood of
// 65536 sources filled it and every door's grants failed, TOTP codes and
// one-time lines burned anyway (there max_grants is refused).
func TestAttackFloodStaticDoor(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	dir := t.TempDir()
	alice := keygen(t, dir, "alice")
	spaFile, _, _ := spaKeys(t, dir, "alice")
	seqs := filepath.Join(dir, "once.seqs")
	if err := os.WriteFile(seqs, []byte("31001,32001:udp,33001\n31002,32002:udp,33002\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metrics := netip.MustParseAddrPort("127.0.0.1:9813")
	cfg := config("reject", fmt.Sprintf(`state_dir = %q
metrics_listen = %q

door "ssh" {
  sequence    = ["7000/tcp", "8000/udp", "9000/tcp"]
  open        = ["22/tcp"]
  open_for    = "1h"
  max_grants  = 256
}

door "vault" {
  totp {}
  client "alice" { secret_file = %q }
  open       = ["2222/tcp"]
  open_for   = "1h"
  max_grants = 256
}

door "spa" {
  spa { port = 62201 }
  client "alice" { key_file = %q }
  open       = ["2223/tcp"]
  open_for   = "1h"
  max_grants = 256
}

door "once" {
  one_time_sequences = %q
  open               = ["2224/tcp"]
  open_for           = "1h"
  max_grants         = 256
}

door "admin" {
  sequence   = ["7100/tcp", "8100/tcp", "9100/tcp"]
  open       = ["2225/tcp"]
  max_grants = 256
}
`, filepath.Join(dir, "state"), metrics, alice, spaFile, seqs))
	tp := NewTopo(t)
	for _, p := range []uint16{22, 2222, 2223, 2224, 2225} {
		Listen(t, tp.Server, p)
	}
	e := &env{Topo: tp, D: StartDaemon(t, tp.Server, cfg)}
	s := spoofer(t, e)

	// The flood: 2000 sources, each its whole sequence, as fast as it goes.
	const fill = 2000
	if n, err := s.Knocks(ServerStranger4, sshSteps, fill, spoofedSrc, 0, time.Now().Add(10*time.Second)); err != nil || n != fill {
		t.Fatalf("flood: %d of %d sources sent: %v", n, fill, err)
	}
	// Until the real clients come, every open is a spoofed one; the open
	// lines of a static door are rate-limited, opens_total counts them all.
	spoofedOpens := func() int { return int(scrape(t, e, metrics)["sesame_opens_total"]) }
	if !Poll(15*time.Second, func() bool { return spoofedOpens() > fill*3/4 }) {
		t.Fatalf("the daemon accepted %d of %d spoofed knocks within 15s", spoofedOpens(), fill)
	}
	if n := len(e.in(t, "pend4_ssh")); n != 256 {
		t.Errorf("pend4_ssh holds %d elements after the flood, want it full (256)", n)
	}
	// It goes on, slower (50 sources/s: a pending knock stays ~5s), while
	// the real clients come.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := fill; ; i += 5 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := s.Knocks(ServerStranger4, sshSteps, 5, func(j int) netip.Addr { return spoofedSrc(i + j) }, 0, time.Now().Add(time.Second)); err != nil {
				t.Errorf("background flood: %v", err)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitIn(t, "pend4_ssh", Client4, 22)
	mustConnect(t, e.Client, ServerClient4, 22)
	e.waitIn(t, "open4_ssh", Client4, 22)

	totpKnock(t, e.Client, ServerClient4, alice)
	e.waitIn(t, "open4_vault", Client4, 2222)
	mustConnect(t, e.Client, ServerClient4, 2222)

	if out, err := e.Client.Try(SesameBin, "knock", "--spa", spaFile, "-A", "tcp/2223", ServerClient4.String()); err != nil {
		t.Fatalf("sesame knock --spa: %v: %s", err, out)
	}
	e.waitIn(t, "open4_spa", Client4, 2223)
	mustConnect(t, e.Client, ServerClient4, 2223)

	knock(t, e.Client, ServerClient4, "31001", "32001:udp", "33001")
	e.waitIn(t, "open4_once", Client4, 2224)
	mustConnect(t, e.Client, ServerClient4, 2224)

	e.Server.Exec(t, SesameBin, "grant", "-c", e.D.Config, "admin", Client4.String())
	e.waitIn(t, "manual4_admin", Client4, 2225)
	mustConnect(t, e.Client, ServerClient4, 2225)

	// The client's pending entry goes (churned out or expired); its
	// confirmed grant stays, and a new connection still gets in.
	if !Poll(15*time.Second, func() bool { return !e.hasGrant(t, "pending", Client4, 22) }) {
		t.Errorf("the client's pending entry is still there after 15s")
	}
	mustConnect(t, e.Client, ServerClient4, 22)

	if got := e.D.Entries(Msg(logevent.GrantFailed)); len(got) != 0 {
		t.Errorf("grants failed during the flood: %v", got[0])
	}
	for _, el := range e.in(t, "open4_ssh") {
		if el.Addr != Client4 {
			t.Errorf("spoofed source %v holds a confirmed grant", el)
		}
	}
	if n := len(e.in(t, "pend4_ssh")); n > 256 {
		t.Errorf("pend4_ssh holds %d elements, more than max_grants", n)
	}
}

// (b) A static door's close sequence, spoofed from the stranger with the
// victims' addresses, cancels neither a victim's SPA grant nor another's
// manual grant on the same port. On e7b785e both lived in grants4 and the
// close revoked them.
func TestAttackSpoofedCloseSparesOthers(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	dir := t.TempDir()
	spaFile, _, _ := spaKeys(t, dir, "alice")
	e := setup(t, config("reject", fmt.Sprintf(`state_dir = %q

door "ssh" {
  sequence       = ["7000/tcp", "8000/udp", "9000/tcp"]
  close_sequence = ["9000/tcp", "8000/udp", "7000/tcp"]
  open           = ["22/tcp"]
  open_for       = "1h"
}

door "spa" {
  spa { port = 62201 }
  client "alice" { key_file = %q }
  open     = ["22/tcp"]
  open_for = "1h"
}
`, filepath.Join(dir, "state"), spaFile)))
	if out, err := e.Client.Try(SesameBin, "knock", "--spa", spaFile, "-A", "tcp/22", ServerClient4.String()); err != nil {
		t.Fatalf("sesame knock --spa: %v: %s", err, out)
	}
	e.waitGrant(t, Client4, 22)
	e.Server.Exec(t, SesameBin, "grant", "-c", e.D.Config, "--for", "1h", "ssh", Client6.String())
	e.waitGrant(t, Client6, 22)

	// The attacker completes the close sequence as each victim.
	closing := make([]spoof.Step, len(sshSteps))
	for i := range sshSteps {
		closing[i] = sshSteps[len(sshSteps)-1-i]
	}
	s := spoofer(t, e)
	for _, v := range []struct{ victim, dst netip.Addr }{{Client4, ServerStranger4}, {Client6, ServerStranger6}} {
		if _, err := s.Knocks(v.dst, closing, 1, func(int) netip.Addr { return v.victim }, 0, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		e.waitLog(t, Msg(logevent.Close, "door", "ssh", "src", v.victim.String()), "the spoofed close of "+v.victim.String())
	}
	// The daemon applies in order: once a later knock's grant shows, what
	// the closes did is in the kernel.
	knock(t, e.Stranger, ServerStranger4, seqSSH...)
	e.waitGrant(t, Stranger4, 22)
	if !e.hasGrant(t, "", Client4, 22) {
		t.Errorf("the spoofed close cancelled the victim's SPA grant: %v", e.grants(t, Client4))
	}
	if !e.hasGrant(t, "", Client6, 22) {
		t.Errorf("the spoofed close cancelled the victim's manual grant: %v", e.grants(t, Client6))
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	mustConnect(t, e.Client, ServerClient6, 22)
}

// (c) A static knock does not shorten a 720h manual grant to open_for. On
// e7b785e both were the same element of grants4, and the knock re-added it
// with a 30s timeout.
func TestAttackKnockKeepsManualGrant(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	e.Server.Exec(t, SesameBin, "grant", "-c", e.D.Config, "--for", "720h", "ssh", Client4.String())
	e.waitGrant(t, Client4, 22)
	knock(t, e.Client, ServerClient4, seqSSH...)
	// The knock's own grant (pending, then confirmed by the connect) is in
	// the kernel once an element of at most open_for shows.
	if !Poll(5*time.Second, func() bool {
		for _, el := range e.grants(t, Client4) {
			if el.Addr == Client4 && el.Port == 22 && el.Timeout <= 30*time.Second {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no grant of the knock within 5s: %v", e.grants(t, Client4))
	}
	mustConnect(t, e.Client, ServerClient4, 22)
	longest := time.Duration(0)
	for _, el := range e.grants(t, Client4) {
		if el.Addr == Client4 && el.Port == 22 {
			longest = max(longest, el.Expires)
		}
	}
	if longest < 719*time.Hour {
		t.Errorf("after a knock the client's longest grant expires in %s, want the manual ~720h: %v", longest, e.grants(t, Client4))
	}
}

// (d) A blind spoofer who completed the static sequence (the door then
// admits its SYN) and then guesses the ACK that would complete the
// handshake never gets a confirmed grant: 2000 random ACKs after a SYN, and
// bare ACKs without a SYN from another source. About half of random ACKs
// fall under conntrack's window and are ignored as "established" rather
// than marked invalid, so only ct status assured (a handshake that really
// completed) may promote. Its SYN announces a window of 1024, which is
// what conntrack accepts an ACK within: a lucky guess has odds of 2000 *
// 1025 / 2^32, 1 in 2000. On e7b785e the spoofed knock alone granted.
func TestAttackBlindACKNotPromoted(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	e := setup(t, config("reject", sshDoor("1h", "5s")))
	s := spoofer(t, e)
	syner, acker := spoofedSrc(7), spoofedSrc(8)
	for _, a := range []netip.Addr{syner, acker} {
		if _, err := s.Knocks(ServerStranger4, sshSteps, 1, func(int) netip.Addr { return a }, 0, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		e.waitLog(t, Msg(logevent.Open, "door", "ssh", "src", a.String()), "the spoofed knock's open")
	}
	const guesses = 2000
	seq := rand.Uint32()
	send := func(p spoof.Packet) {
		t.Helper()
		if err := s.Send(&p); err != nil && err != unix.ENOBUFS {
			t.Fatal(err)
		}
	}
	send(spoof.Packet{Src: syner, Dst: ServerStranger4, Proto: unix.IPPROTO_TCP, SrcPort: 41000, DstPort: 22, Flags: spoof.SYN, Seq: seq, Window: 1024})
	time.Sleep(50 * time.Millisecond) // the server's SYN-ACK goes out (to the stranger, who drops it)
	for i := range guesses {
		send(spoof.Packet{Src: syner, Dst: ServerStranger4, Proto: unix.IPPROTO_TCP, SrcPort: 41000, DstPort: 22, Flags: spoof.ACK,
			Seq: seq + 1, Ack: rand.Uint32(), Window: 1024})
		send(spoof.Packet{Src: acker, Dst: ServerStranger4, Proto: unix.IPPROTO_TCP, SrcPort: 42000 + uint16(i%8), DstPort: 22, Flags: spoof.ACK,
			Seq: rand.Uint32(), Ack: rand.Uint32(), Window: 1024})
	}
	// The server has seen them all once it answers the client after them.
	knock(t, e.Client, ServerClient4, seqSSH...)
	mustConnect(t, e.Client, ServerClient4, 22)
	e.waitIn(t, "open4_ssh", Client4, 22)
	for _, a := range []netip.Addr{syner, acker} {
		for _, el := range e.grants(t, a) {
			if el.Addr == a && el.Kind() != "pending" {
				t.Errorf("blind spoofer %s holds %v", a, el)
			}
		}
	}
}

// (e) Local traffic to a guarded port (ssh localhost, a proxy in front of a
// guarded backend) needs no knock. On e7b785e it was refused.
func TestAttackLoopbackOpen(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	for _, a := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), ServerClient4} {
		if err := Connect(e.Server, a, 22, 2*time.Second); err != nil {
			t.Errorf("connect from the server itself to %s: %v", netip.AddrPortFrom(a, 22), err)
		}
	}
	mustRefuse(t, e.Client, ServerClient4, 22) // still guarded from outside
}

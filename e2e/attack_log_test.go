package e2e

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/logevent"
)

// logFloodSources bounds the flood: two spoofed SYNs per source.
const logFloodSources = 10000

// A flood of spoofed SYNs, each forged source hitting the first knock port
// and then another port (a stage and a reset line each, 20,000 lines on
// e7b785e), makes the daemon write a bounded number of lines naming those
// sources, each marked spoofable=true, and a log-summary line with the
// count of the rest; a real knock still opens.
func TestAttackLogFlood(t *testing.T) {
	t.Parallel()
	e := setup(t, config("reject", sshDoor("30s", "5s")))
	start := time.Now()
	sent, err := spoofSYNPairs(e.Stranger, ServerStranger4, logFloodSources, 7000, 2222)
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	// The summary comes at most every 5s after the first suppressed line.
	summary, err := e.D.WaitLog(12*time.Second, Msg(logevent.LogSummary, "door", "ssh"))
	if err != nil {
		t.Errorf("no log-summary line after the flood: %v", err)
	}
	elapsed := time.Since(start)
	spoofed := e.D.Entries(func(en Entry) bool {
		a, err := netip.ParseAddr(en.Str("src"))
		return err == nil && netip.MustParsePrefix("198.18.0.0/15").Contains(a)
	})
	marked := 0
	for _, en := range spoofed {
		if en.Str("spoofable") == "true" {
			marked++
		}
	}
	t.Logf("flood: %d packets; %d lines name a spoofed source in %v; summary %v", sent, len(spoofed), elapsed.Round(time.Millisecond), summary)
	// 20 stage/reset lines a second (daemon/loglimit.go), one second of slack.
	if limit := 20 * (int(elapsed/time.Second) + 2); len(spoofed) > limit || len(spoofed) == 0 {
		t.Errorf("%d lines name a spoofed source in %v, want 1 to %d (rate-limited)", len(spoofed), elapsed, limit)
	}
	if marked != len(spoofed) {
		t.Errorf("%d of %d lines naming a spoofed source say spoofable=true", marked, len(spoofed))
	}
	// Capture may drop some of the burst under load: the summary counts
	// what the daemon saw and did not log.
	if n, _ := strconv.Atoi(summary.Str("suppressed")); summary != nil && (n == 0 || n+len(spoofed) > sent) {
		t.Errorf("summary says %d suppressed beside %d logged, want 1 to %d in all", n, len(spoofed), sent)
	}
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
}

// spoofSYNPairs sends, from ns through a raw socket, n sources' worth of
// TCP SYNs to dst: source i (in 198.18.0.0/15) sends one SYN to each of
// ports in turn. It returns the number of packets sent.
func spoofSYNPairs(ns *nstest.NS, dst netip.Addr, n int, ports ...uint16) (int, error) {
	sent := 0
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: dst.As4()}
		pkt := make([]byte, 40)
		for i := range n {
			src := [4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)}
			for _, port := range ports {
				spoofSYN(pkt, src, to.Addr, uint16(1024+i%60000), port)
				if err := unix.Sendto(fd, pkt, 0, to); err != nil && !strings.Contains(err.Error(), "no buffer space") {
					return err
				}
				sent++
			}
		}
		return nil
	})
	return sent, err
}

// spoofSYN writes an IPv4 TCP SYN into pkt (40 bytes). The kernel fills in
// the IP checksum and ID of a raw IPPROTO_RAW socket; the TCP checksum is
// ours.
func spoofSYN(pkt []byte, src, dst [4]byte, sport, dport uint16) {
	clear(pkt)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], 40)
	pkt[8] = 64
	pkt[9] = unix.IPPROTO_TCP
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], uint32(sport)<<16|uint32(dport))
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	sum := uint32(unix.IPPROTO_TCP) + 20
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(tcp[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(tcp[16:], ^uint16(sum))
}

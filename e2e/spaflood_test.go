package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// spaFloodPackets bounds the flood: enough to keep the reader busy while
// the legit packet arrives, small enough for make test's time budget.
const spaFloodPackets = 20000

// A legit SPA packet opens the door during a flood of random base64
// payloads (valid length and alphabet, so each costs a full HMAC) to the
// SPA port, and the refusal log stays rate-limited.
func TestSPAFlood(t *testing.T) {
	t.Parallel()
	e, keyFile, _, _ := spaSetup(t)
	stop := make(chan struct{})
	flooded := make(chan int, 1)
	go func() {
		sent := 0
		err := e.Stranger.Do(func() error {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ServerStranger4, 62201)))
			if err != nil {
				return err
			}
			defer c.Close()
			raw := make([]byte, 180)
			deadline := time.Now().Add(20 * time.Second)
			for ; sent < spaFloodPackets && time.Now().Before(deadline); sent++ {
				select {
				case <-stop:
					return nil
				default:
				}
				rand.Read(raw)
				p := []byte("+" + base64.RawStdEncoding.EncodeToString(raw))
				c.Write(p) // ECONNREFUSED from an earlier ICMP error is harmless here
			}
			return nil
		})
		if err != nil {
			t.Errorf("flood: %v", err)
		}
		flooded <- sent
	}()
	time.Sleep(50 * time.Millisecond) // let the flood start
	start := time.Now()
	if out, err := e.Client.Try(SesameBin, "knock", "--spa", keyFile, "-A", "tcp/22", ServerClient4.String()); err != nil {
		t.Fatalf("sesame knock --spa: %v: %s", err, out)
	}
	e.waitGrant(t, Client4, 22)
	t.Logf("legit SPA granted %v after sending, during the flood", time.Since(start).Round(time.Millisecond))
	sent := <-flooded
	close(stop)
	elapsed := time.Since(start)
	refusals := e.D.CountLog(Msg(logevent.SPARefused))
	t.Logf("flood: %d packets; %d spa-refused lines logged", sent, refusals)
	// 20 lines a second (daemon/spa.go), plus one second of slack.
	if limit := 20 * (int(elapsed/time.Second) + 2); refusals > limit {
		t.Errorf("%d spa-refused lines in %v, want at most %d (rate-limited)", refusals, elapsed, limit)
	}
	if sent > 1000 && refusals == 0 {
		t.Error("no refusal logged during the flood")
	}
}

package bench

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/spoof"
)

// KnockFloodRun is issue 11's flood: spoofed sources that complete the
// door's static sequence (anyone who saw one knock can send it), as fast
// as the generator goes, with open_for 1h, while the legitimate client
// knocks and a TOTP, an SPA and a manual grant of other doors are tried.
// sesame only: knockd cannot tell a real knock from a replayed one.
type KnockFloodRun struct {
	For        time.Duration
	Offered    float64 // packets/s the sender wrote
	Sources    float64 // spoofed sources/s that sent their whole sequence
	SpoofOpens int     // grants that landed, less the legitimate ones (sesame_opens_total)
	Confirmed  int     // spoofed addresses in the door's open set at the end
	Pending    int     // elements in the door's IPv4 pending set at the end
	MaxGrants  int
	Legit, OK  int
	Others     map[string]bool // "totp", "spa", "manual": granted (connect within 1s)
	CPU        float64
	Drops      int64
	Packets    int64
	DropsKnown bool
}

// spoofedElem matches an element of the flood's sources in `nft list set`.
var spoofedElem = regexp.MustCompile(`198\.1[89]\.\d+\.\d+ \. tcp`)

// Guarded ports of the other doors in the knock flood run.
const (
	totpPort   = 2223
	spaPort    = 2224
	manualPort = 2225
)

// knockFloodRun runs KnockFloodRun against a fresh sesame.
func knockFloodRun(opts Options, bin string, t *topo, dir string) (*KnockFloodRun, error) {
	kr := &KnockFloodRun{For: opts.KnockFloodFor, MaxGrants: 65536, Others: map[string]bool{}}
	dir = filepath.Join(dir, "knockflood")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	totpKey, spaKey := filepath.Join(dir, "alice.key"), filepath.Join(dir, "alice.spa")
	for _, args := range [][]string{{"keygen", "-o", totpKey}, {"keygen", "--spa", "-o", spaKey}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sesame %v: %w: %s", args, err, out)
		}
	}
	cfg := fmt.Sprintf(`interfaces = [%q]
table      = "sesame"
closed     = "reject"
state_dir  = %q
metrics_listen = %q

door "bench" {
  sequence    = [%s]
  seq_timeout = "5s"
  open        = ["%d/tcp"]
  open_for    = "1h"
}
door "vault" {
  totp {}
  client "alice" { secret_file = %q }
  open     = ["%d/tcp"]
  open_for = "1h"
}
door "spa" {
  spa {}
  client "alice" { key_file = %q }
  open     = ["%d/tcp"]
  open_for = "1h"
}
door "admin" {
  sequence = ["7100/tcp", "8100/tcp", "9100/tcp"]
  open     = ["%d/tcp"]
  open_for = "1h"
}
`, ifServer, filepath.Join(dir, "state"), knockFloodMetrics, sequenceHCL(knockPorts), guarded, totpKey, totpPort, spaKey, spaPort, manualPort)
	for _, port := range []uint16{totpPort, spaPort, manualPort} {
		s, err := listenSink(t.srv, port)
		if err != nil {
			return nil, err
		}
		defer s.Close()
	}
	p, err := startSesame(t.srv, bin, dir, cfg, "info")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	path := filepath.Join(dir, "sesame.hcl") // for sesame revoke and grant
	var sender *spoof.Sender
	if err := t.cli.Do(func() error {
		var err error
		sender, err = spoof.Open(ifClient, t.srvMAC)
		return err
	}); err != nil {
		return nil, err
	}
	defer sender.Close()
	steps := make([]spoof.Step, len(knockPorts))
	for i, port := range knockPorts {
		steps[i] = spoof.Step{Port: port, Proto: unix.IPPROTO_TCP}
	}
	u0, err := p.usage()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Random sources of 198.18.0.0/15, each its whole sequence.
		src := func(i int) netip.Addr {
			h := uint32(i) * 2654435761
			return netip.AddrFrom4([4]byte{198, 18 + byte(h>>31), byte(h >> 8), byte(h)})
		}
		n, err := sender.Knocks(server4, steps, 1<<30, src, 0, start.Add(opts.KnockFloodFor))
		done <- result{n, err}
	}()
	revoke := func(a netip.Addr) error {
		_, err := t.srv.Run(bin, "revoke", "-c", path, "bench", a.String())
		return err
	}
	for i := 0; time.Since(start) < opts.KnockFloodFor-300*time.Millisecond; i++ {
		dst, src := server4, client4
		if i%2 == 1 {
			dst, src = server6, client6
		}
		_, ok, err := knockOnce(t.cli, knockSpec{Dst: dst, Ports: knockPorts, Gap: 100 * time.Millisecond,
			Guarded: guarded, Poll: 200 * time.Microsecond, Within: time.Second})
		if err != nil {
			return nil, err
		}
		kr.Legit++
		if ok {
			kr.OK++
		}
		if err := revoke(src); err != nil {
			return nil, err
		}
		if i == 0 {
			if err := otherGrants(bin, t, path, totpKey, spaKey, kr.Others); err != nil {
				return nil, err
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	elapsed := time.Since(start)
	u1, err := p.usage()
	if err != nil {
		return nil, err
	}
	kr.Offered = float64(r.n*len(steps)) / elapsed.Seconds()
	kr.Sources = float64(r.n) / elapsed.Seconds()
	kr.CPU = (u1.CPU - u0.CPU).Seconds() / elapsed.Seconds()
	for _, set := range []string{"pend4_bench", "open4_bench"} {
		out, err := t.srv.Run("nft", "list", "set", "inet", "sesame", set)
		if err != nil {
			return nil, err
		}
		n := len(spoofedElem.FindAllString(out, -1))
		if set == "pend4_bench" {
			kr.Pending = n
		} else {
			kr.Confirmed = n
		}
	}
	// Every grant that landed, from the daemon's counter: the open lines
	// of a static door are rate-limited under a flood, so they undercount.
	opens, err := scrapeCounter(t.srv, knockFloodMetrics, "sesame_opens_total")
	if err != nil {
		return nil, err
	}
	legit := kr.OK
	for _, ok := range []bool{kr.Others["totp"], kr.Others["spa"]} { // manual grants do not pass the daemon
		if ok {
			legit++
		}
	}
	kr.SpoofOpens = max(0, int(opens)-legit)
	p.stop()
	kr.Packets, kr.Drops, kr.DropsKnown = sesameKind{}.Drops(p)
	return kr, nil
}

// otherGrants tries, during the flood, a TOTP knock, an SPA packet and a
// sesame grant on the run's other doors, each followed by connects to its
// port for up to a second.
func otherGrants(bin string, t *topo, cfg, totpKey, spaKey string, got map[string]bool) error {
	try := func(name string, ns *nstest.NS, port uint16, args ...string) error {
		if out, err := ns.Run(bin, args...); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return t.cli.Do(func() error {
			deadline := time.Now().Add(time.Second)
			for !got[name] && time.Now().Before(deadline) {
				got[name] = tryConnect(server4, port, 100*time.Millisecond)
				if !got[name] {
					time.Sleep(10 * time.Millisecond)
				}
			}
			return nil
		})
	}
	if err := try("totp", t.cli, totpPort, "knock", "--totp", totpKey, server4.String()); err != nil {
		return err
	}
	if err := try("spa", t.cli, spaPort, "knock", "--spa", spaKey, "-A", fmt.Sprintf("tcp/%d", spaPort), server4.String()); err != nil {
		return err
	}
	return try("manual", t.srv, manualPort, "grant", "-c", cfg, "admin", client4.String())
}

// knockFloodMetrics is where the knock flood's daemon serves its metrics,
// inside the server namespace.
const knockFloodMetrics = "127.0.0.1:9813"

// scrapeCounter reads one unlabelled metric from the daemon's /metrics in
// ns.
func scrapeCounter(ns *nstest.NS, addr, name string) (float64, error) {
	var v float64
	err := ns.Do(func() error {
		// A plain connection on this goroutine, whose thread is in ns
		// (http.Client dials on goroutines of its own, in another
		// namespace).
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: sesame\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				v, err = strconv.ParseFloat(strings.TrimSpace(rest), 64)
				return err
			}
		}
		return fmt.Errorf("%s: no %s", addr, name)
	})
	return v, err
}

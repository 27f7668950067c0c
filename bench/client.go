package bench

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/client"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// sink is a TCP listener in the server namespace that accepts on every
// address and discards what it reads: the guarded service.
type sink struct {
	ln net.Listener
	wg sync.WaitGroup
}

func listenSink(ns *nstest.NS, port uint16) (*sink, error) {
	s := &sink{}
	err := ns.Do(func() error {
		var err error
		s.ln, err = net.Listen("tcp", net.JoinHostPort("::", strconv.Itoa(int(port))))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %d in %s: %w", port, ns.Name, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return s, nil
}

func (s *sink) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// sockaddr converts an address and port for the unix package.
func sockaddr(a netip.Addr, port uint16) (int, unix.Sockaddr) {
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}
}

// tryConnect makes one blocking connect (bounded by timeout) and reports
// whether it succeeded. With closed = "reject" a closed port answers at
// once with a reset.
func tryConnect(dst netip.Addr, port uint16, timeout time.Duration) bool {
	fam, sa := sockaddr(dst, port)
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	return unix.Connect(fd, sa) == nil
}

// knockSpec is one knock by the legitimate client.
type knockSpec struct {
	Dst     netip.Addr
	Target  netip.Addr // where the guarded port is; zero: Dst (a forwarded backend otherwise)
	Ports   []uint16
	Gap     time.Duration // between knock packets
	Guarded uint16
	Poll    time.Duration // between connect attempts
	Within  time.Duration // give up after this long
}

// knockOnce knocks from inside ns and polls the guarded port until a
// connect succeeds. It returns the time from the last knock packet sent to
// the first successful connect (monotonic clock), and whether one
// succeeded within the bound.
func knockOnce(ns *nstest.NS, k knockSpec) (time.Duration, bool, error) {
	var lat time.Duration
	var ok bool
	err := ns.Do(func() error {
		steps := make([]policy.PortProto, len(k.Ports))
		for i, p := range k.Ports {
			steps[i] = policy.PortProto{Port: p, Proto: policy.TCP}
		}
		// As sesame knock sends them: one SYN per port, no retransmit.
		if err := client.Knock(k.Dst, steps, k.Gap, nil); err != nil {
			return fmt.Errorf("knock %s: %w", k.Dst, err)
		}
		target := k.Target
		if !target.IsValid() {
			target = k.Dst
		}
		sent := time.Now()
		deadline := sent.Add(k.Within)
		for {
			if tryConnect(target, k.Guarded, 100*time.Millisecond) {
				lat, ok = time.Since(sent), true
				return nil
			}
			if time.Now().After(deadline) {
				return nil
			}
			// Not time.Sleep: with nothing else to run, the Go runtime
			// waits for a timer in epoll_wait, whose timeout is whole
			// milliseconds, so a 100 µs sleep can last 1 ms and the
			// measurement would have that granularity. The thread is
			// locked (ns.Do) and may block.
			ts := unix.NsecToTimespec(k.Poll.Nanoseconds())
			_ = unix.Nanosleep(&ts, nil)
		}
	})
	return lat, ok, err
}

// bulk connects from ns to dst:port and writes n bytes. It returns how long
// the transfer took.
func bulk(ns *nstest.NS, dst netip.Addr, port uint16, n int64) (time.Duration, error) {
	var took time.Duration
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(dst, port).String(), 2*time.Second)
		if err != nil {
			return fmt.Errorf("bulk connect: %w", err)
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		start := time.Now()
		for sent := int64(0); sent < n; {
			w, err := c.Write(buf[:min(int64(len(buf)), n-sent)])
			if err != nil {
				return fmt.Errorf("bulk write after %d bytes: %w", sent, err)
			}
			sent += int64(w)
		}
		took = time.Since(start)
		return nil
	})
	return took, err
}

// latencyRun knocks 2 + 2*n times from cli, alternating IPv4 and IPv6 (to
// target4 or target6, or the server when zero), and calls flush after
// each; the two first knocks warm up (ARP and neighbour discovery, the
// daemon's first netlink batch) and are not counted. It returns the
// latencies by family and how many knocks were not granted.
func latencyRun(cli *nstest.NS, n int, target4, target6 netip.Addr, flush func() error) (v4, v6 []time.Duration, fail int, err error) {
	for i := -2; i < 2*n; i++ {
		dst, target := server4, target4
		if i%2 != 0 {
			dst, target = server6, target6
		}
		lat, ok, err := knockOnce(cli, knockSpec{Dst: dst, Target: target, Ports: knockPorts, Gap: 5 * time.Millisecond,
			Guarded: guarded, Poll: 100 * time.Microsecond, Within: 500 * time.Millisecond})
		if err != nil {
			return v4, v6, fail, err
		}
		switch {
		case i < 0:
		case !ok:
			fail++
		case dst.Is4():
			v4 = append(v4, lat)
		default:
			v6 = append(v6, lat)
		}
		if err := flush(); err != nil {
			return v4, v6, fail, err
		}
	}
	return v4, v6, fail, nil
}

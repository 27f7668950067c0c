package fleetsim

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Proxy is a delaying TCP proxy: every byte that goes through it, in
// either direction, is held for Delay before it is written on (this
// kernel has no netem). Each direction of each connection is a delay
// line: a reader stamps what it reads, a writer sends each chunk at its
// stamp plus Delay, so the delay adds latency without limiting throughput.
type Proxy struct {
	Delay time.Duration
	ls    []net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// NewProxy listens on one local port per upstream address and forwards
// each connection to its upstream with delay d each way. Addrs returns
// the listening addresses, in the order of upstreams.
func NewProxy(upstreams []string, d time.Duration) (*Proxy, error) {
	p := &Proxy{Delay: d, conns: map[net.Conn]struct{}{}}
	for _, up := range upstreams {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.Close()
			return nil, err
		}
		p.ls = append(p.ls, l)
		p.wg.Go(func() { p.serve(l, up) })
	}
	return p, nil
}

// Addrs returns the proxy's listening addresses.
func (p *Proxy) Addrs() []string {
	var a []string
	for _, l := range p.ls {
		a = append(a, l.Addr().String())
	}
	return a
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.done = true
	for _, l := range p.ls {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve(l net.Listener, upstream string) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Go(func() {
			if !p.track(c) {
				return
			}
			defer p.untrack(c)
			u, err := net.DialTimeout("tcp", upstream, 5*time.Second)
			if err != nil {
				return
			}
			if !p.track(u) {
				return
			}
			defer p.untrack(u)
			var wg sync.WaitGroup
			wg.Go(func() { p.pipe(u, c) })
			wg.Go(func() { p.pipe(c, u) })
			wg.Wait()
		})
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst through a delay line; when either side fails,
// both are closed so that the other direction ends too.
func (p *Proxy) pipe(dst, src net.Conn) {
	line := make(chan chunk, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(line)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				line <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(p.Delay)}
			}
			if err != nil {
				return
			}
		}
	})
	for c := range line {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	src.Close()
	dst.Close()
	for range line { // let the reader finish
	}
	wg.Wait()
}

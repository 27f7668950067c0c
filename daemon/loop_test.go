package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// fakeTable records every Apply call; the first failures calls fail.
type fakeTable struct {
	mu       sync.Mutex
	calls    []applyCall
	failures int
	err      error // what a failure returns; nil: a generic error
}

type applyCall struct {
	Grants  []nft.Grant
	Revokes []nft.Revoke
}

func (f *fakeTable) Apply(g []nft.Grant, r []nft.Revoke) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, applyCall{Grants: append([]nft.Grant(nil), g...), Revokes: append([]nft.Revoke(nil), r...)})
	if f.failures > 0 {
		f.failures--
		if f.err != nil {
			return f.err
		}
		return errors.New("netlink: injected failure")
	}
	return nil
}

var _ Granter = (*fakeTable)(nil)

func testPolicy(t *testing.T, seq ...string) *policy.Policy {
	t.Helper()
	src := `door "ssh" {
  sequence       = [` + quote(seq) + `]
  seq_timeout    = "5s"
  open           = ["22/tcp"]
  open_for       = "30s"
  close_sequence = ["9100/tcp", "9200/tcp", "9300/tcp"]
}
`
	p, diags := policy.Parse("test.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("policy: %v", diags.Error())
	}
	return p
}

func quote(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = `"` + s + `"`
	}
	return strings.Join(q, ", ")
}

var (
	client = netip.MustParseAddr("198.51.100.2")
	server = netip.MustParseAddr("198.51.100.1")
)

func syn(port uint16) knock.Hit {
	return knock.Hit{Src: client, Dst: server, Proto: policy.TCP, Port: port, Flags: policy.FlagSYN}
}

// newTestLoop returns a loop with a fake clock that only moves when told.
func newTestLoop(t *testing.T, tbl Granter, p *policy.Policy) (*loop, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newLoop(log, tbl, p, knock.Config{})
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	return l, &buf, &now
}

func TestLoopGrantsOnceAfterFullSequence(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{}
	p := testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp")
	l, buf, _ := newTestLoop(t, tbl, p)
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
		l.flush()
	}
	// A static door confirms by default: the knock is pending for 10s, and
	// the kernel makes it a grant for open_for once the knocker connects.
	want := []applyCall{{Grants: []nft.Grant{{Src: client, Door: "ssh", Kind: nft.Pending, Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 10 * time.Second}}}}
	if diff := cmp.Diff(want, tbl.calls, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Apply calls (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		"msg=stage door=ssh src=198.51.100.2 stage=1/3",
		"msg=stage door=ssh src=198.51.100.2 stage=2/3",
		"msg=open door=ssh src=198.51.100.2 ports=22/tcp for=30s confirm=10s",
	} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, buf)
		}
	}
}

func TestLoopCloseRevokes(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{}
	l, buf, _ := newTestLoop(t, tbl, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
	for _, port := range []uint16{7000, 8000, 9000, 9100, 9200, 9300} {
		l.observe(syn(port))
	}
	l.flush()
	// The revoke follows the grant in the same batch: the grant is flushed
	// first so the kernel sees them in order.
	want := []applyCall{
		{Grants: []nft.Grant{{Src: client, Door: "ssh", Kind: nft.Pending, Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}, TTL: 10 * time.Second}}},
		{Revokes: []nft.Revoke{{Src: client, Door: "ssh", Ports: []policy.PortProto{{Port: 22, Proto: policy.TCP}}}}},
	}
	if diff := cmp.Diff(want, tbl.calls, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Apply calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(buf.String(), "msg=close door=ssh src=198.51.100.2") {
		t.Errorf("no close line:\n%s", buf)
	}
}

func TestLoopRetriesOnceThenLogsWithSrcAndDoor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		failures  int
		wantCalls int
		wantError bool
	}{
		{name: "transient", failures: 1, wantCalls: 2},
		{name: "persistent", failures: 5, wantCalls: 2, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := &fakeTable{failures: tc.failures}
			l, buf, _ := newTestLoop(t, tbl, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
			for _, port := range []uint16{7000, 8000, 9000} {
				l.observe(syn(port))
			}
			l.flush()
			if len(tbl.calls) != tc.wantCalls {
				t.Errorf("Apply called %d times, want %d", len(tbl.calls), tc.wantCalls)
			}
			gotError := strings.Contains(buf.String(), `level=ERROR msg=grant-failed door=ssh src=198.51.100.2`)
			if gotError != tc.wantError {
				t.Errorf("error line logged = %v, want %v:\n%s", gotError, tc.wantError, buf)
			}
			// The loop goes on: the next knock is applied again.
			for _, port := range []uint16{7000, 8000, 9000} {
				l.observe(syn(port))
			}
			l.flush()
			if len(tbl.calls) <= tc.wantCalls {
				t.Errorf("loop stopped applying after a failure")
			}
		})
	}
}

// TestLoopRunBatchesAndReloads drives run() through its channels: queued
// hits are applied in one transaction, and a reload swaps the sequence.
func TestLoopRunBatchesAndReloads(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{}
	p := testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp")
	l, _, _ := newTestLoop(t, tbl, p)

	hits := make(chan *hitBatch, 64)
	hup := make(chan os.Signal, 1)
	tick := make(chan time.Time)
	// Two sources knock; all six hits are queued before the loop starts.
	other := netip.MustParseAddr("2001:db8::2")
	for _, port := range []uint16{7000, 8000, 9000} {
		hits <- one(syn(port))
		h := syn(port)
		h.Src = other
		hits <- one(h)
	}
	next := testPolicy(t, "7100/tcp", "8100/tcp", "9100/udp")
	reloaded := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, hits, hup, tick, func() *policy.Policy { close(reloaded); return next })
	}()

	waitFor(t, func() bool { tbl.mu.Lock(); defer tbl.mu.Unlock(); return len(tbl.calls) >= 1 })
	tbl.mu.Lock()
	if len(tbl.calls) != 1 || len(tbl.calls[0].Grants) != 2 {
		t.Errorf("want one Apply with both grants, got %+v", tbl.calls)
	}
	tbl.mu.Unlock()

	hup <- os.Interrupt
	<-reloaded
	// The old sequence no longer opens; the new one does.
	third := netip.MustParseAddr("203.0.113.9")
	for _, port := range []uint16{7000, 8000, 9000} {
		h := syn(port)
		h.Src = third
		hits <- one(h)
	}
	for _, pp := range []policy.PortProto{{Port: 7100, Proto: policy.TCP}, {Port: 8100, Proto: policy.TCP}, {Port: 9100, Proto: policy.UDP}} {
		hits <- one(knock.Hit{Src: third, Dst: server, Proto: pp.Proto, Port: pp.Port, Flags: flagsFor(pp.Proto)})
	}
	waitFor(t, func() bool { tbl.mu.Lock(); defer tbl.mu.Unlock(); return len(tbl.calls) >= 2 })
	cancel()
	<-done
	if len(tbl.calls) != 2 || len(tbl.calls[1].Grants) != 1 || tbl.calls[1].Grants[0].Src != third {
		t.Errorf("after reload want exactly one grant for %v, got %+v", third, tbl.calls)
	}
}

// one wraps a hit in an unpooled batch.
func one(h knock.Hit) *hitBatch {
	b := &hitBatch{n: 1}
	b.hits[0] = h
	return b
}

func flagsFor(p policy.Proto) uint8 {
	if p == policy.TCP {
		return policy.FlagSYN
	}
	return 0
}

// waitFor polls cond for up to 5s: the loop runs in another goroutine.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoopSetFull: when the kernel refuses a grant because its door's set
// is full (ENFILE), the log says so with the door, beside the usual
// per-grant errors (the size is now per door: issue 11).
func TestLoopSetFull(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{failures: 2, err: fmt.Errorf("write grants to table inet sesame: %w", unix.ENFILE)}
	l, buf, _ := newTestLoop(t, tbl, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
	}
	l.flush()
	for _, want := range []string{
		`level=ERROR msg=grant-set-full door=ssh max_grants=65536 grants=1`,
		`level=ERROR msg=grant-failed door=ssh src=198.51.100.2 ports=22/tcp reason=set-full`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf)
		}
	}
}

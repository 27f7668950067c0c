package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
)

type fakeHooks struct {
	mu   sync.Mutex
	jobs []HookJob
}

func (f *fakeHooks) Submit(j HookJob) { f.mu.Lock(); f.jobs = append(f.jobs, j); f.mu.Unlock() }

var _ HookSubmitter = (*fakeHooks)(nil)

func hookPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	src := `door "ssh" {
  sequence       = ["7000", "8000", "9000"]
  open           = ["22/tcp", "443/tcp"]
  close_sequence = ["9100", "9200", "9300"]
  on_open        = ["/usr/bin/logger", "{door} {ip} {ports}"]
  on_close       = ["/bin/echo", "closed", "{ip}"]
  hook_timeout   = "2s"
}
`
	p, diags := policy.Parse("hooks.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return p
}

// TestLoopHooksAfterApply: on_open and on_close are submitted, expanded,
// only after the transaction that applies their grant or revoke succeeded.
func TestLoopHooksAfterApply(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{}
	l, _, _ := newTestLoop(t, tbl, hookPolicy(t))
	fh := &fakeHooks{}
	l.hooks = fh
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
	}
	if len(fh.jobs) != 0 {
		t.Fatalf("hook submitted before the grant was applied: %+v", fh.jobs)
	}
	l.flush()
	for _, port := range []uint16{9100, 9200, 9300} {
		l.observe(syn(port))
	}
	l.flush()
	want := []HookJob{
		{Event: "open", Door: "ssh", Src: "198.51.100.2", Argv: []string{"/usr/bin/logger", "ssh 198.51.100.2 22/tcp,443/tcp"}, Timeout: 2 * time.Second},
		{Event: "close", Door: "ssh", Src: "198.51.100.2", Argv: []string{"/bin/echo", "closed", "198.51.100.2"}, Timeout: 2 * time.Second},
	}
	if diff := cmp.Diff(want, fh.jobs); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if len(tbl.calls) != 2 {
		t.Errorf("want 2 Apply calls, got %d", len(tbl.calls))
	}
}

func TestLoopHooksSkippedWhenApplyFails(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{failures: 2}
	l, buf, _ := newTestLoop(t, tbl, hookPolicy(t))
	fh := &fakeHooks{}
	l.hooks = fh
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
	}
	l.flush()
	if len(fh.jobs) != 0 {
		t.Errorf("hook submitted for a failed grant: %+v", fh.jobs)
	}
	if !strings.Contains(buf.String(), "msg=hook-skipped event=open door=ssh src=198.51.100.2") {
		t.Errorf("no hook skipped line in:\n%s", buf.String())
	}
}

// syncBuf is a log sink safe for the pool's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitLog(t *testing.T, buf *syncBuf, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in log:\n%s", text, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHookRunner runs real programs: output and exit status are logged, a
// hanging hook (and its children) is killed at its time limit, and Submit
// never blocks, even with every worker stuck and the queue full.
func TestHookRunner(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs programs")
	}
	buf := &syncBuf{}
	log := slog.New(slog.NewTextHandler(buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	h := newHookRunner(ctx, log)
	defer func() { cancel(); h.Wait() }()

	h.Submit(HookJob{Event: "open", Door: "ok", Src: "192.0.2.2", Argv: []string{"/bin/sh", "-c", "echo hello $SESAME_IP; exit 3"}, Timeout: 5 * time.Second})
	waitLog(t, buf, `msg=hook-failed event=open door=ok src=192.0.2.2 argv0=/bin/sh`)
	waitLog(t, buf, `output="hello 192.0.2.2" exit=3`)

	h.Submit(HookJob{Event: "open", Door: "hang", Src: "192.0.2.3", Argv: []string{"/bin/sh", "-c", "sleep 60 & sleep 60"}, Timeout: 200 * time.Millisecond})
	waitLog(t, buf, `msg=hook-timeout event=open door=hang`)

	// Stick every worker, fill the queue, then submit more: each Submit
	// must return at once.
	start := time.Now()
	for range hookWorkers + hookQueue + 10 {
		h.Submit(HookJob{Event: "open", Door: "stuck", Src: "192.0.2.4", Argv: []string{"/bin/sleep", "60"}, Timeout: time.Minute})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Submit blocked for %v", d)
	}
	waitLog(t, buf, `msg=hook-dropped event=open door=stuck src=192.0.2.4 reason="queue full"`)
}

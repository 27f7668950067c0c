package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
)

// HookJob is one on_open or on_close run: its argv with placeholders
// already expanded.
type HookJob struct {
	Event   string // "open" or "close"
	Door    string
	Src     string
	Argv    []string
	Timeout time.Duration
}

// HookSubmitter queues hook runs. Submit never blocks: the matcher
// goroutine calls it after the grant or revoke is applied.
type HookSubmitter interface {
	Submit(HookJob)
}

// Hook pool bounds: how many hooks run at once and how many may wait.
// When the queue is full, a hook is dropped (and logged), never waited for.
const (
	hookWorkers = 4
	hookQueue   = 64
	maxHookLog  = 2048 // bytes of a hook's output kept for the log
)

// hookRunner runs hooks in a bounded worker pool, off the matcher's
// goroutine: a slow, hanging or failing hook never delays a grant.
type hookRunner struct {
	log  *slog.Logger
	jobs chan HookJob
	wg   sync.WaitGroup
}

var _ HookSubmitter = (*hookRunner)(nil)

// newHookRunner starts the workers; they stop when ctx ends, killing the
// hooks that still run.
func newHookRunner(ctx context.Context, log *slog.Logger) *hookRunner {
	h := &hookRunner{log: log, jobs: make(chan HookJob, hookQueue)}
	for range hookWorkers {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-h.jobs:
					h.run(ctx, j)
				}
			}
		}()
	}
	return h
}

// Submit queues j, or drops it with a warning when the queue is full.
func (h *hookRunner) Submit(j HookJob) {
	select {
	case h.jobs <- j:
	default:
		h.log.Warn(logevent.HookDropped, "event", j.Event, "door", j.Door, "src", j.Src, "reason", "queue full")
	}
}

// Wait returns when every worker has stopped (after ctx ended).
func (h *hookRunner) Wait() { h.wg.Wait() }

// run executes one hook without a shell, in its own process group so that
// a timeout kills everything it started, and logs its result and output.
func (h *hookRunner) run(ctx context.Context, j HookJob) {
	ctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	out := &capBuffer{max: maxHookLog}
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SESAME_EVENT=" + j.Event, "SESAME_DOOR=" + j.Door, "SESAME_IP=" + j.Src}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	attrs := []any{"event", j.Event, "door", j.Door, "src", j.Src, "argv0", j.Argv[0], "took", time.Since(start).Round(time.Millisecond).String()}
	if out.Len() > 0 {
		attrs = append(attrs, "output", out.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		h.log.Info(logevent.Hook, attrs...)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		h.log.Warn(logevent.HookTimeout, append(attrs, "timeout", j.Timeout.String())...)
	case errors.As(err, &ee):
		h.log.Warn(logevent.HookFailed, append(attrs, "exit", ee.ExitCode())...)
	default:
		h.log.Warn(logevent.HookFailed, append(attrs, "err", err.Error())...)
	}
}

// capBuffer keeps the first max bytes written to it and counts the rest.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	n := len(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if room < len(p) {
		c.dropped += len(p) - max(room, 0)
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	return n, nil
}

func (c *capBuffer) Len() int { c.mu.Lock(); defer c.mu.Unlock(); return c.buf.Len() }

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := string(bytes.TrimSpace(c.buf.Bytes()))
	if c.dropped > 0 {
		s += "…"
	}
	return s
}

// hookJob builds the job for a door's argv, or false when there is none.
func hookJob(event string, d *policy.Door, argv []string, src string) (HookJob, bool) {
	if len(argv) == 0 {
		return HookJob{}, false
	}
	return HookJob{
		Event:   event,
		Door:    d.Name,
		Src:     src,
		Argv:    policy.ExpandHook(argv, src, d.Name, policy.FormatPorts(d.Open)),
		Timeout: d.HookTimeout,
	}, true
}

// hookFor returns the hook job for a door's argv, or nil when there is
// none or hooks are not run. The loop submits it once the grant or revoke
// it follows is applied (settle).
func (l *loop) hookFor(event string, d *policy.Door, argv []string, src string) *HookJob {
	if l.hooks == nil {
		return nil
	}
	if j, ok := hookJob(event, d, argv, src); ok {
		return &j
	}
	return nil
}

// runHook submits j when what it follows was applied, and says it is
// skipped otherwise.
func (l *loop) runHook(j *HookJob, applied bool) {
	switch {
	case j == nil:
	case applied:
		l.hooks.Submit(*j)
	default:
		l.log.Warn(logevent.HookSkipped, "event", j.Event, "door", j.Door, "src", j.Src, "reason", "the nftables update failed")
	}
}

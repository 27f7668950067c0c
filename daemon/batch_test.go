package daemon

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestLoopBatchFromPool sends one pooled batch holding a whole sequence:
// the loop grants once and hands the batch back, emptied, to its pool.
func TestLoopBatchFromPool(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{}
	l, _, _ := newTestLoop(t, tbl, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp"))
	free := newBatchPool()
	b := <-free
	for _, port := range []uint16{7000, 8000, 9000} {
		b.hits[b.n] = syn(port)
		b.n++
	}
	hits := make(chan *hitBatch, 1)
	hits <- b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, hits, make(chan os.Signal), make(chan time.Time), nil)
	}()
	waitFor(t, func() bool { return len(free) == batchesPerReader })
	cancel()
	<-done
	if len(tbl.calls) != 1 || len(tbl.calls[0].Grants) != 1 || tbl.calls[0].Grants[0].Src != client {
		t.Errorf("want one Apply with one grant for %v, got %+v", client, tbl.calls)
	}
	if b.n != 0 {
		t.Errorf("batch handed back with n = %d, want 0", b.n)
	}
}

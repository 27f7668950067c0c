package daemon

import "github.com/sesame-knock/sesame/knock"

// Hits travel from a capture reader to the loop in batches: the hits one
// wake-up of the reader found in the receive ring, so that a flood costs
// one channel hand-off per batch rather than per packet. Each reader owns
// a fixed set of batches that the loop hands back once it has observed
// them: nothing is allocated per packet, and a loop that falls behind
// stalls the reader, whose ring then fills and the kernel counts the drops.
const (
	batchLen         = 64
	batchesPerReader = 16
)

type hitBatch struct {
	hits [batchLen]knock.Hit
	n    int
	free chan<- *hitBatch // its reader's pool; nil: not pooled (tests)
}

// newBatchPool returns a reader's pool, full.
func newBatchPool() chan *hitBatch {
	free := make(chan *hitBatch, batchesPerReader)
	for range batchesPerReader {
		free <- &hitBatch{free: free}
	}
	return free
}

// observeBatch observes the batch's hits, hands it back to its reader and
// returns how many hits it held.
func (l *loop) observeBatch(b *hitBatch) int {
	n := b.n
	for i := range n {
		l.observe(b.hits[i])
	}
	b.n = 0
	if b.free != nil {
		b.free <- b // never blocks: the pool has room for all its batches
	}
	return n
}

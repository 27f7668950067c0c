package nft

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/policy"
)

// BenchmarkGrant is one Grant (one element, a fresh or refreshed timer) on
// the lasting conn, as the daemon does for each open decision.
func BenchmarkGrant(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			ns := nstest.New(b, "nft")
			tbl := newTable(b, ns, m.opts...)
			mustEnsure(b, tbl, testPolicy(policy.ClosedDrop, ssh))
			i := 0
			for b.Loop() {
				src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) // 65536 sources, then re-grants
				if err := tbl.Grant(src, "ssh", Open, []policy.PortProto{ssh}, time.Minute); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
		})
	}
}

// BenchmarkApply100 is one Apply of 100 grants (a busy tick's batch).
func BenchmarkApply100(b *testing.B) {
	ns := nstest.New(b, "nft")
	tbl := newTable(b, ns)
	mustEnsure(b, tbl, testPolicy(policy.ClosedDrop, ssh))
	grants := manyGrants(50)
	for b.Loop() {
		if err := tbl.Apply(grants, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
}

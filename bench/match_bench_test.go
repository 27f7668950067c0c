package bench

import (
	"net"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// BenchmarkMatchPath is the user-space path of one flood packet, without
// the kernel's BPF filter: decode the frame, then Observe. The frames are
// the flood's (spoofed IPv4 and IPv6 SYNs to the knock ports from 64Ki
// distinct sources), so the matcher's table stays full and churns. 1e9 /
// ns/op is the matcher's hits per second on one core.
func BenchmarkMatchPath(b *testing.B) {
	var g frameGen
	g.init(floodSpec{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Dst4: server4, Dst6: server6, Ports: knockPorts})
	frames := make([][]byte, 1<<16)
	for i := range frames {
		frames[i] = append([]byte(nil), g.next()[ethLen:]...)
	}
	p, diags := policy.Parse("bench.hcl", []byte(`interfaces = ["lo"]
door "bench" {
  sequence = ["7000/tcp", "8000/tcp", "9000/tcp"]
  open     = ["2222/tcp"]
}
`))
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	m := knock.New(p, knock.Config{})
	now := time.Unix(1e9, 0)
	var h knock.Hit
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !capture.Decode(frames[i&(len(frames)-1)], &h) {
			b.Fatal("frame does not decode")
		}
		now = now.Add(time.Microsecond)
		m.Observe(h, now)
	}
}

package bench

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/capture"
	"github.com/sesame-knock/sesame/internal/nstest"
	"github.com/sesame-knock/sesame/internal/spoof"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/policy"
)

// TestFrames checks the flood's frames: every one decodes as a bare SYN to
// a knock port from the spoofed ranges, with valid checksums.
func TestFrames(t *testing.T) {
	var g frameGen
	g.init(floodSpec{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Dst4: server4, Dst6: server6, Ports: knockPorts})
	r4 := netip.MustParsePrefix("198.18.0.0/15")
	r6 := netip.MustParsePrefix("2001:db8:ff::/48")
	seen := map[netip.Addr]bool{}
	for i := range 1000 {
		f := g.next()
		var h knock.Hit
		if !capture.Decode(f[ethLen:], &h) {
			t.Fatalf("frame %d does not decode: % x", i, f)
		}
		if !(r4.Contains(h.Src) || r6.Contains(h.Src)) || h.Proto != policy.TCP || h.Flags != policy.FlagSYN {
			t.Fatalf("frame %d: %+v", i, h)
		}
		ip := f[ethLen:]
		l4 := ip[ip4Len:]
		if h.Src.Is4() {
			if spoof.Checksum(0, ip[:ip4Len]) != 0 {
				t.Fatalf("frame %d: bad IPv4 header checksum", i)
			}
			if spoof.Checksum(pseudo(ip[12:20], tcpLen), l4) != 0 {
				t.Fatalf("frame %d: bad TCP checksum", i)
			}
		} else if spoof.Checksum(pseudo(ip[8:40], tcpLen), ip[ip6Len:]) != 0 {
			t.Fatalf("frame %d: bad TCP checksum (IPv6)", i)
		}
		seen[h.Src] = true
	}
	if len(seen) < 990 {
		t.Errorf("only %d distinct sources in 1000 frames", len(seen))
	}
}

// TestPercentile pins the nearest-rank percentile.
func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 90: 90, 99: 99, 100: 100} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%g = %d, want %d", p, got, want)
		}
	}
	if percentile(nil, 99) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// TestQuick is the smoke run of the end-to-end benchmark: the real sesame
// binary (and knockd, which e2e/deps.sh installs) in namespaces, a few
// knocks, a short low-rate flood and a small transfer. It checks that the
// run works end to end and that its table is sane: every knock granted by
// sesame, every legitimate knock granted under the low-rate flood, no
// socket drops, PERFORMANCE.md and the plots written. No timing is
// asserted.
func TestQuick(t *testing.T) {
	nstest.RequireRoot(t)
	if testing.Short() {
		t.Skip("smoke run of the benchmark: not in -short")
	}
	bin := os.Getenv("SESAME_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "sesame")
		// In the product's module (..), with its dependency versions.
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/sesame")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build sesame: %v: %s", err, out)
		}
	}
	kd, err := exec.LookPath("knockd")
	if err != nil {
		kd, err = exec.LookPath("/usr/sbin/knockd")
	}
	if err != nil && os.Getenv("SESAME_REQUIRE_ROOT") == "1" {
		t.Fatal("knockd is not installed (e2e/deps.sh installs it)")
	}
	var progress bytes.Buffer
	o := Quick(bin, kd)
	o.Log = &progress
	rs, err := Run(o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	WriteText(&out, rs)
	text := out.String()
	t.Logf("\n%s", text)

	want := 1
	if kd != "" {
		want = 2
	}
	if len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	// Parse the table: sesame's column.
	cell := func(metric string) string {
		m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(metric) + ` \| ([^|]+) \|`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no row %q in the table", metric)
		}
		return strings.TrimSpace(m[1])
	}
	if got := cell("knocks not granted (latency runs)"); got != "0" {
		t.Errorf("sesame: %s knocks not granted", got)
	}
	if got := cell("flood 2k: legit knocks granted"); !regexp.MustCompile(`^(\d+)/(\d+) \(100%\)$`).MatchString(got) {
		t.Errorf("sesame under a 2k pps flood: legit knocks granted = %q, want all", got)
	}
	if got := cell("flood 2k: socket drops / packets"); !strings.HasPrefix(got, "0 / ") {
		t.Errorf("sesame: socket drops / packets = %q, want no drops", got)
	}
	s := rs[0]
	if len(s.Latency4) != o.Knocks || len(s.Latency6) != o.Knocks {
		t.Errorf("sesame: %d IPv4 and %d IPv6 latencies, want %d each", len(s.Latency4), len(s.Latency6), o.Knocks)
	}
	if len(s.FwdLatency4) != o.Knocks || len(s.FwdLatency6) != o.Knocks {
		t.Errorf("sesame: %d IPv4 and %d IPv6 forward latencies, want %d each", len(s.FwdLatency4), len(s.FwdLatency6), o.Knocks)
	}
	if f := s.Floods[0]; f.Legit == 0 || f.Offered <= 0 || f.Delivered <= 0 || f.PeakRSSKiB <= 0 {
		t.Errorf("sesame flood run not measured: %+v", f)
	}
	if f := s.Floods[0]; f.Opens != f.Legit {
		t.Errorf("sesame logged %d opens for %d legit knocks under a 2k pps flood; want one each", f.Opens, f.Legit)
	}
	if k := s.KnockFlood; k == nil || k.Legit == 0 || k.Offered <= 0 {
		t.Errorf("sesame knock flood run not measured: %+v", k)
	}
	if s.Bulk.Took <= 0 {
		t.Errorf("sesame bulk transfer not measured: %+v", s.Bulk)
	}
	if kd != "" && len(rs[1].Latency4) == 0 {
		t.Errorf("knockd granted no IPv4 knock:\n%s", progress.String())
	}

	dir := t.TempDir()
	if err := WriteDocs(dir, o, rs, "", "sesame-bench -quick"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"PERFORMANCE.md", LatencyPNG, FloodPNG} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
		if strings.HasSuffix(f, ".png") && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", f)
		}
	}
}

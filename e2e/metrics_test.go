package e2e

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesame-knock/sesame/logevent"
)

// scrape fetches /metrics from inside the server's namespace and returns
// the samples by name (with labels), e.g. `sesame_opens_total`.
func scrape(t *testing.T, e *env, ap netip.AddrPort) map[string]float64 {
	t.Helper()
	c, err := Dial(e.Server, ap.Addr(), ap.Port(), 2*time.Second)
	if err != nil {
		t.Fatalf("connect to the metrics endpoint: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "HTTP/1.0 200") {
		t.Fatalf("GET /metrics: %.200s", body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// After a correct knock and a wrong one, the Prometheus endpoint counts
// them: packets, hits, stages, the open, the reset by reason, a netlink
// transaction, and the build.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort("127.0.0.1:9813")
	e := setup(t, config("reject", sshDoor("30s", "5s"))+"metrics_listen = \""+ap.String()+"\"\n")
	e.waitLog(t, Msg(logevent.Metrics, "listen", "http://"+ap.String()+"/metrics"), "the metrics line")
	before := scrape(t, e, ap)
	if before["sesame_opens_total"] != 0 {
		t.Errorf("opens before any knock = %v", before["sesame_opens_total"])
	}
	knock(t, e.Client, ServerClient4, seqSSH...)
	e.waitGrant(t, Client4, 22)
	knock(t, e.Stranger, ServerStranger4, "7000", "9000") // 9000 out of order: a reset
	e.waitLog(t, Msg(logevent.Reset, "src", Stranger4.String()), "the stranger's reset")

	m := scrape(t, e, ap)
	want := map[string]float64{
		"sesame_opens_total":                       1,
		"sesame_stages_total":                      3, // client 7000, 8000; stranger 7000
		`sesame_resets_total{reason="wrong-port"}`: 1,
		"sesame_netlink_apply_seconds_count":       1,
		"sesame_grant_errors_total":                0,
		`sesame_packets_total{interface="s-cli"}`:  3,
		`sesame_packets_total{interface="s-str"}`:  2,
		"sesame_hits_total":                        5,
		"sesame_table_restores_total":              0,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok || got < v {
			t.Errorf("%s = %v (present %v), want >= %v", k, got, ok, v)
		}
	}
	if m["sesame_opens_total"] != 1 {
		t.Errorf("sesame_opens_total = %v, want exactly 1", m["sesame_opens_total"])
	}
	found := false
	for k, v := range m {
		if strings.HasPrefix(k, "sesame_build_info{") && v == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no sesame_build_info sample")
	}
	// The tracked-sources gauge follows the matcher once a tick.
	knock(t, e.Stranger, ServerStranger4, "7000") // a sequence in progress
	if !Poll(3*time.Second, func() bool { return scrape(t, e, ap)["sesame_tracked_sources"] >= 1 }) {
		t.Errorf("sesame_tracked_sources stayed 0 with the stranger's sequence in progress")
	}
}

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// knockdKind runs knockd 0.8 (Debian's package) in its best case: its
// command adds the address to an nftables set with a timeout, in a table
// laid out like sesame's (closed = "reject"), instead of appending an
// iptables rule.
type knockdKind struct{ Bin string }

func (knockdKind) Name() string { return "knockd" }

// knockdTable is the same layout as sesame's table, for knockd's command:
// only the guarded TCP port is filtered. (Everything else must pass:
// rejecting ICMPv6 would break neighbour discovery, and with it every IPv6
// knock.)
const knockdTable = `table inet knockd {
  set grants4 { type ipv4_addr . inet_proto . inet_service; flags timeout; size 65536; }
  set grants6 { type ipv6_addr . inet_proto . inet_service; flags timeout; size 65536; }
  chain input {
    type filter hook input priority filter - 5; policy accept;
    meta l4proto != tcp accept
    tcp dport != %[1]d accept
    ct state established,related accept
    ip saddr . meta l4proto . th dport @grants4 accept
    ip6 saddr . meta l4proto . th dport @grants6 accept
    reject with tcp reset
  }
}
`

// knockdGrant is the script knockd's command runs: one nft call that adds
// the address to the set of its family.
const knockdGrant = `#!/bin/sh
case "$1" in
*:*) exec nft add element inet knockd grants6 "{ $1 . tcp . %[1]d timeout 30s }" ;;
*) exec nft add element inet knockd grants4 "{ $1 . tcp . %[1]d timeout 30s }" ;;
esac
`

func (k knockdKind) Start(ns *nstest.NS, dir, iface string, knock []uint16, guarded uint16) (*proc, error) {
	if _, err := ns.Run("nft", "list", "table", "inet", "knockd"); err != nil {
		tbl := filepath.Join(dir, "knockd.nft")
		if err := os.WriteFile(tbl, fmt.Appendf(nil, knockdTable, guarded), 0o600); err != nil {
			return nil, err
		}
		if _, err := ns.Run("nft", "-f", tbl); err != nil {
			return nil, err
		}
	}
	script := filepath.Join(dir, "knockd-grant.sh")
	if err := os.WriteFile(script, fmt.Appendf(nil, knockdGrant, guarded), 0o700); err != nil {
		return nil, err
	}
	var seq []string
	for _, p := range knock {
		seq = append(seq, strconv.Itoa(int(p))+":tcp")
	}
	logFile := filepath.Join(dir, "knockd.log")
	_ = os.Remove(logFile)
	cfg := fmt.Sprintf(`[options]
	LogFile = %s

[bench]
	sequence    = %s
	seq_timeout = 5
	tcpflags    = syn
	command     = %s %%IP%%
`, logFile, strings.Join(seq, ","), script)
	path := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("knockd", ns, k.Bin, "-i", iface, "-c", path, "-p", filepath.Join(dir, "knockd.pid"))
	if err != nil {
		return nil, err
	}
	p.logFile = logFile
	if err := p.waitFor(10*time.Second, "listening line in "+logFile, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "listening on")
	}); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (knockdKind) FlushGrants(ns *nstest.NS) error {
	_, err := ns.Run("nft", "flush set inet knockd grants4; flush set inet knockd grants6")
	return err
}

// Drops: knockd reads through libpcap and never reports pcap_stats.
func (knockdKind) Drops(*proc) (int64, int64, bool) { return 0, 0, false }

// Opens counts knockd's "IP: door: OPEN SESAME" log lines for the
// legitimate client.
func (knockdKind) Opens(p *proc) int {
	b, _ := os.ReadFile(p.logFile)
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		i := strings.Index(line, ": OPEN SESAME")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[:i])
		if len(f) >= 2 && legit(strings.TrimSuffix(f[len(f)-2], ":")) {
			n++
		}
	}
	return n
}

package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/internal/nstest"
	"golang.org/x/sys/unix"
)

// load loads nft text into ns with nft -f.
func load(t *testing.T, ns *nstest.NS, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "-f", f)
}

// TestReadLive loads every fixture into a namespace with nft, reads it back
// over netlink and checks that the findings are those of the text, and
// that the suggested fix, applied with nft, clears them.
func TestReadLive(t *testing.T) {
	if testing.Short() {
		t.Skip("root: namespaces")
	}
	nstest.RequireRoot(t)
	for _, c := range diagCases {
		t.Run(c.name, func(t *testing.T) {
			ns := nstest.New(t, "doc")
			load(t, ns, fixture(t, c.fixtures...))
			for _, f := range c.pre {
				f.exec(t, ns)
			}
			in := c.input()
			rs, err := Read(WithNetNS(ns.FD()))
			if err != nil {
				t.Fatal(err)
			}
			got := Diagnose(rs, in)
			if d := cmp.Diff(c.want, briefs(got, c.want)); d != "" {
				t.Errorf("findings (-want +got):\n%s\n%v", d, got)
			}
			for _, f := range got {
				if f.Where.Chain != "" && !f.Where.Policy && f.Where.Handle == 0 {
					t.Errorf("no handle: %v", f)
				}
			}
			for _, f := range c.fixes {
				f.exec(t, ns)
			}
			if c.fixes == nil {
				return
			}
			rs, err = Read(WithNetNS(ns.FD()))
			if err != nil {
				t.Fatal(err)
			}
			if got := Diagnose(rs, in); len(got) != 0 {
				t.Errorf("after the fix: %v", got)
			}
		})
	}
}

// exec applies f with nft in ns.
func (f fixRule) exec(t *testing.T, ns *nstest.NS) {
	t.Helper()
	verb := "add"
	if f.insert {
		verb = "insert"
	}
	ns.Exec(t, "nft", append([]string{verb, "rule", f.family, f.table, f.chain}, strings.Fields(f.rule)...)...)
}

// TestReadLegacyLive reads the iptables-legacy tables of a namespace: none
// at first, then an empty filter table (the doctor's own GET_INFO would
// create it; the reader only asks about listed tables), with no rules and
// no DROP policy.
func TestReadLegacyLive(t *testing.T) {
	if testing.Short() {
		t.Skip("root: namespaces")
	}
	ns := nstest.New(t, "doc")
	var got []LegacyTable
	err := ns.Do(func() error {
		var err error
		got, err = readLegacy("/proc/thread-self/net")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("fresh namespace: %v", got)
	}
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		buf := make([]byte, 84)
		copy(buf, "filter")
		if err := getsockopt(fd, unix.IPPROTO_IP, soGetInfo, buf); err != nil {
			return err
		}
		got, err = readLegacy("/proc/thread-self/net")
		return err
	})
	if errors.Is(err, unix.ENOENT) {
		t.Skip("no iptable_filter in this kernel")
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []LegacyTable{{Family: "ip", Name: "filter"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

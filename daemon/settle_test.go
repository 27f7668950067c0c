package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/onetime"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

// Attacker's tests for issue 11 item 2: what a grant uses up (a TOTP code,
// a one-time line) is used up only if the grant landed, and msg=open and
// opens_total report only grants that landed.

// fullDoor makes every grant of door fail as a full set would.
type fullDoor struct {
	fakeTable
	door string
}

func (f *fullDoor) Apply(g []nft.Grant, r []nft.Revoke) error {
	_ = f.fakeTable.Apply(g, r)
	res := &nft.ApplyError{Grants: make([]error, len(g)), Revokes: make([]error, len(r))}
	failed := false
	for i := range g {
		if g[i].Door == f.door {
			res.Grants[i] = &nft.SetError{Set: "open4_" + f.door, Err: unix.ENFILE}
			failed = true
		}
	}
	if !failed {
		return nil
	}
	return res
}

// errFull is the error of a table whose every grant fails: a full set.
var errFull = fmt.Errorf("write grants to table inet sesame: %w", unix.ENFILE)

func totpPolicy(t *testing.T) *policy.Policy {
	return &policy.Policy{StateDir: t.TempDir(), Doors: []policy.Door{{
		Name: "vault", SeqTimeout: 5 * time.Second, TCPFlags: policy.DefaultTCPFlags,
		Open: []policy.PortProto{{Port: 2222, Proto: policy.TCP}}, OpenFor: 30 * time.Second, MaxGrants: 16,
		TOTP:    &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Skew: 1, Proto: policy.TCP},
		Clients: []policy.Client{{Name: "alice", Secret: []byte("alice-secret-0123456789")}},
	}}}
}

// TestLoopTOTPCodeKeptWhenGrantFails: a TOTP knock whose grant does not
// land does not burn the code: not in memory (the same code opens again)
// nor in the burns file. On e7b785e the code stayed burned.
func TestLoopTOTPCodeKeptWhenGrantFails(t *testing.T) {
	t.Parallel()
	tbl := &fakeTable{failures: 2, err: errFull}
	p := totpPolicy(t)
	l, buf, now := newTestLoop(t, tbl, p)
	seq := totp.Sequence(p.Doors[0].Clients[0].Secret, totp.Counter(*now, 30*time.Second), 20000, 29999, 4)
	for _, port := range seq {
		l.observe(syn(port))
	}
	l.flush()
	if strings.Contains(buf.String(), "msg=open") {
		t.Errorf("msg=open logged for a grant that failed:\n%s", buf)
	}
	b, err := os.ReadFile(filepath.Join(p.StateDir, burnFile))
	if err != nil || strings.Contains(string(b), "alice") {
		t.Errorf("burns file after the failed grant: %q, %v; want it without alice's code", b, err)
	}
	for _, port := range seq {
		l.observe(syn(port))
	}
	l.flush()
	if !strings.Contains(buf.String(), "msg=open door=vault src=198.51.100.2 client=alice") {
		t.Errorf("the same code did not open again once the table took grants:\n%s", buf)
	}
	if b, _ := os.ReadFile(filepath.Join(p.StateDir, burnFile)); !strings.Contains(string(b), "vault\talice\t") {
		t.Errorf("burns file after the grant landed: %q; want alice's code burned", b)
	}
}

// TestLoopOneTimeLineKeptWhenGrantFails: a one-time knock whose grant does
// not land leaves its line unused, in the file and in the door: the same
// sequence opens again. On e7b785e the line stayed used.
func TestLoopOneTimeLineKeptWhenGrantFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seqs := filepath.Join(dir, "seqs")
	const file = "7001,7302,7103\n7011,7312,7113\n"
	if err := os.WriteFile(seqs, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	p, diags := policy.Parse(filepath.Join(dir, "s.hcl"), []byte(`state_dir = "`+filepath.Join(dir, "state")+`"
door "once" {
  one_time_sequences = "`+seqs+`"
  open               = ["2223/tcp"]
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	first, err := onetime.Parse([]byte("7001,7302,7103"))
	if err != nil {
		t.Fatal(err)
	}
	used := func() bool {
		m, err := onetime.ReadUsed(p.Doors[0].OneTimeUsed)
		if err != nil {
			t.Fatal(err)
		}
		return m[first[0].Key()]
	}
	tbl := &fakeTable{failures: 2, err: errFull}
	l, buf, _ := newTestLoop(t, tbl, p)
	knock := func() {
		for _, port := range []uint16{7001, 7302, 7103} {
			l.observe(syn(port))
		}
		l.flush()
	}
	knock()
	if used() {
		t.Errorf("state file after the failed grant records the sequence used; want it unused")
	}
	if strings.Contains(buf.String(), "msg=open") {
		t.Errorf("msg=open logged for a grant that failed:\n%s", buf)
	}
	knock()
	if !strings.Contains(buf.String(), "msg=open door=once") {
		t.Errorf("the line did not open again:\n%s", buf)
	}
	if !used() {
		t.Errorf("state file after the grant landed: want the sequence recorded used")
	}
	if b, _ := os.ReadFile(seqs); string(b) != file {
		t.Errorf("the sequence file changed: %q; it is only read", b)
	}
}

// TestLoopOpenOnlyWhenLanded: in one batch, the grant of a full door fails
// and another door's lands: msg=open, opens_total and on_open follow the
// one that landed only, the other logs grant failed with its reason.
func TestLoopOpenOnlyWhenLanded(t *testing.T) {
	t.Parallel()
	p, diags := policy.Parse("t.hcl", []byte(`door "full" {
  sequence = ["7000", "8000", "9000"]
  open     = ["22/tcp"]
  on_open  = ["/bin/true"]
}
door "other" {
  sequence = ["7100", "8100", "9100"]
  open     = ["443/tcp"]
  on_open  = ["/bin/true"]
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	tbl := &fullDoor{door: "full"}
	l, buf, _ := newTestLoop(t, tbl, p)
	fh := &fakeHooks{}
	l.hooks = fh
	l.met = newMetrics("test", "test")
	other := netip.MustParseAddr("203.0.113.9")
	for _, port := range []uint16{7000, 8000, 9000} {
		l.observe(syn(port))
		h := syn(port + 100)
		h.Src = other
		l.observe(h)
	}
	l.flush()
	log := buf.String()
	if strings.Contains(log, "msg=open door=full") || !strings.Contains(log, "msg=open door=other src=203.0.113.9") {
		t.Errorf("want msg=open for door other only:\n%s", log)
	}
	if !strings.Contains(log, `msg=grant-failed door=full src=198.51.100.2 ports=22/tcp reason=set-full`) {
		t.Errorf("no grant failed line with the reason:\n%s", log)
	}
	if got := counter(t, l.met, "sesame_opens_total"); got != 1 {
		t.Errorf("opens_total = %v, want 1", got)
	}
	if len(fh.jobs) != 1 || fh.jobs[0].Door != "other" {
		t.Errorf("hooks: %+v, want on_open of door other only", fh.jobs)
	}
}

// counter reads a counter of m by name.
func counter(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

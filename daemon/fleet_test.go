package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/onetime"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

// fakeLink records what the publisher hands to the link.
type fakeLink struct{ published chan fakePub }

type fakePub struct {
	group, id string
	env       []byte
	notAfter  time.Time
}

func (f *fakeLink) Publish(group, id string, env []byte, notAfter time.Time) bool {
	select {
	case f.published <- fakePub{group, id, env, notAfter}:
		return true
	default:
		return false
	}
}
func (f *fakeLink) Close() {}

// fleetFixture is a loop in fleet mode (member "web-1" of fleet "prod",
// group "web") with a fake table and link, and the keys of two other
// members: bastion-1 may open ssh in web, mallory may open nothing there.
type fleetFixture struct {
	l     *loop
	tbl   *fakeTable
	now   *time.Time
	log   *strings.Builder
	keys  map[string]ed25519.PrivateKey
	fs    *fleetState
	reg   *prometheus.Registry
	clock int // what adjtimex returns
}

func newFleetFixture(t *testing.T) *fleetFixture {
	t.Helper()
	tbl := &fakeTable{}
	p := testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp")
	p.Doors[0].FleetGroups = []string{"web"}
	p.Doors[0].Confirm, p.Doors[0].ConfirmWithin = false, 0
	l, buf, now := newTestLoop(t, tbl, p)
	f := &fleetFixture{l: l, tbl: tbl, now: now, reg: prometheus.NewRegistry(), clock: unix.TIME_OK}
	var members *fleet.Members
	members, f.keys = testMembers(t, map[string]string{"bastion-1": `{ web = ["ssh"] }`, "web-1": `{ web = ["ssh"] }`, "mallory": `{ db = ["ssh"] }`})
	f.fs = attachFleet(l, members, f.keys, "web-1", f.reg)
	f.fs.clockState = func() (int, error) { return f.clock, nil }
	f.log = &strings.Builder{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return f
}

// testMembers returns a members file with a fresh key per member (name to
// may_grant), and the keys.
func testMembers(t *testing.T, may map[string]string) (*fleet.Members, map[string]ed25519.PrivateKey) {
	t.Helper()
	keys := map[string]ed25519.PrivateKey{}
	var src strings.Builder
	for name, grant := range may {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = priv
		fmt.Fprintf(&src, "member %q {\n  key = %q\n  may_grant = %s\n}\n", name, fleet.FormatKey(pub), grant)
	}
	members, diags := fleet.ParseMembers("members.hcl", []byte(src.String()))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return members, keys
}

// attachFleet puts l in fleet mode (fleet "prod", group "web") as member,
// with a fake link that records what is published.
func attachFleet(l *loop, members *fleet.Members, keys map[string]ed25519.PrivateKey, member string, reg *prometheus.Registry) *fleetState {
	self := fleet.Self{Fleet: "prod", Groups: []string{"web"}, Doors: fleet.DoorsOf(l.p), MaxSkew: 2 * time.Second}
	fs := newFleetState(l.log, fleet.NewReceiver(members, self, 1024, 10, 20), fleet.Origin{Fleet: "prod", Member: member, Key: keys[member]}, reg)
	fs.now = l.now
	fs.clockState = func() (int, error) { return unix.TIME_OK, nil }
	fs.link = &fakeLink{published: make(chan fakePub, 16)}
	l.fleet = fs
	return fs
}

// record signs a record by signer (origin "origin") issued at the
// fixture's now.
func (f *fleetFixture) record(t *testing.T, signer, kind string, src netip.Addr, openFor time.Duration, edit func(*fleet.Payload)) []byte {
	t.Helper()
	p := fleet.Payload{Fleet: "prod", Group: "web", Origin: signer, ID: fleet.NewID(), Kind: kind, Door: "ssh", Src: src.String(),
		Ports: []string{"22/tcp"}, IssuedAt: f.now.UnixMilli(), NotAfter: f.now.Add(openFor).UnixMilli()}
	if edit != nil {
		edit(&p)
	}
	b, err := fleet.Sign(f.keys[signer], p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fleetFixture) receive(data []byte, from string, catchUp bool) {
	f.l.fleetReceive(fleetRecord{data: data, from: from, group: "web", catchUp: catchUp})
	f.l.flush()
}

var ssh22 = []policy.PortProto{{Port: 22, Proto: policy.TCP}}

// TestFleetReceiveApplies: a member's record becomes a grant with the
// time left and a comment naming door, origin and id; the same record
// again is a replay, and a catch-up duplicate is not a refusal.
func TestFleetReceiveApplies(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	rec := f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil)
	*f.now = f.now.Add(250 * time.Millisecond) // delivered 250 ms after issue
	f.receive(rec, "bastion-1", false)
	env, _ := fleet.Decode(rec)
	want := []applyCall{{Grants: []nft.Grant{{Src: client, Door: "ssh", Kind: nft.Open, Ports: ssh22, TTL: 29750 * time.Millisecond,
		Comment: "fleet:ssh:bastion-1:" + env.Payload.ID[:4]}}}}
	if diff := cmp.Diff(want, f.tbl.calls, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("Apply calls (-want +got):\n%s", diff)
	}
	f.receive(rec, "bastion-1", false)
	f.receive(rec, "bastion-1", true)
	if len(f.tbl.calls) != 1 {
		t.Errorf("a replayed record was applied: %d calls", len(f.tbl.calls))
	}
	if got := value(f.fs.met.refused[fleet.ReasonReplayedID]); got != 1 {
		t.Errorf("replayed-id refusals = %v, want 1 (the live replay; the catch-up copy is a duplicate)", got)
	}
	if got := value(f.fs.met.duplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	if got := value(f.fs.met.applied.WithLabelValues("open")); got != 1 {
		t.Errorf("applied = %v, want 1", got)
	}
}

// TestFleetReceiveRefuses: the attacker's records change nothing in the
// kernel, and each refusal is counted under its reason.
func TestFleetReceiveRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		signer string
		from   string
		edit   func(*fleet.Payload)
		want   fleet.Reason
	}{
		{"forged signature", "mallory", "bastion-1", func(p *fleet.Payload) { p.Origin = "bastion-1" }, fleet.ReasonBadSignature},
		{"signed by another member", "mallory", "mallory", func(p *fleet.Payload) { p.Origin = "bastion-1" }, fleet.ReasonSignerNotOrigin},
		{"under another's name", "bastion-1", "mallory", nil, fleet.ReasonSignerNotOrigin},
		{"no may_grant", "mallory", "mallory", nil, fleet.ReasonNotAllowed},
		{"door not here", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.Door = "db" }, fleet.ReasonNotAllowed},
		{"port not in open", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.Ports = []string{"23/tcp"} }, fleet.ReasonPortsNotInOpen},
		{"longer than open_for", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.NotAfter = p.IssuedAt + 31_000 }, fleet.ReasonTooLong},
		{"from the future", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.IssuedAt += 3000; p.NotAfter += 3000 }, fleet.ReasonFromTheFuture},
		{"expired", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.IssuedAt -= 31_000; p.NotAfter -= 31_000 }, fleet.ReasonExpired},
		{"other fleet", "bastion-1", "bastion-1", func(p *fleet.Payload) { p.Fleet = "staging" }, fleet.ReasonOtherFleet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleetFixture(t)
			f.receive(f.record(t, tc.signer, fleet.KindOpen, client, 30*time.Second, tc.edit), tc.from, false)
			if len(f.tbl.calls) != 0 {
				t.Errorf("refused record reached the table: %+v", f.tbl.calls)
			}
			if got := value(f.fs.met.refused[tc.want]); got != 1 {
				t.Errorf("refusals with %v = %v, want 1", tc.want, got)
			}
		})
	}
}

// TestFleetClockUnsynced: while adjtimex says TIME_ERROR no record is
// applied; once synchronised, records apply again.
func TestFleetClockUnsynced(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	f.clock = unix.TIME_ERROR
	f.l.tick(*f.now)
	f.receive(f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil), "bastion-1", false)
	if len(f.tbl.calls) != 0 || value(f.fs.met.refused[fleet.ReasonClockUnsynced]) != 1 {
		t.Fatalf("unsynchronised: calls %+v, clock-unsynced refusals %v", f.tbl.calls, value(f.fs.met.refused[fleet.ReasonClockUnsynced]))
	}
	f.clock = unix.TIME_OK
	f.l.tick(*f.now)
	f.receive(f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil), "bastion-1", false)
	if len(f.tbl.calls) != 1 {
		t.Errorf("synchronised again: %d calls, want 1", len(f.tbl.calls))
	}
}

// TestFleetPublishesLocalOpens: a local knock on a door with fleet_groups
// is published once its grant landed, signed by this member; a grant that
// failed is not published.
func TestFleetPublishesLocalOpens(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	link := f.fs.link.(*fakeLink)
	f.tbl.failures = 2 // the first knock's grant fails (and its retry)
	for range 2 {
		for _, port := range []uint16{7000, 8000, 9000} {
			f.l.observe(syn(port))
		}
		f.l.flush()
	}
	if len(f.fs.pub) != 1 {
		t.Fatalf("%d publishes queued, want 1 (only the grant that landed)", len(f.fs.pub))
	}
	p := <-f.fs.pub
	f.fs.pub <- p
	go f.fs.runPublisher(t.Context())
	var got fakePub
	select {
	case got = <-link.published:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published")
	}
	env, err := fleet.Decode(got.env)
	if err != nil {
		t.Fatal(err)
	}
	pub := f.keys["web-1"].Public().(ed25519.PublicKey)
	if !env.Verify(pub) || env.Payload.Origin != "web-1" || env.Payload.Src != client.String() || got.group != "web" || got.id != env.Payload.ID {
		t.Errorf("published %+v (verifies %v)", env.Payload, env.Verify(pub))
	}
	if d := time.UnixMilli(env.Payload.NotAfter).Sub(time.UnixMilli(env.Payload.IssuedAt)); d != 30*time.Second {
		t.Errorf("not_after - issued_at = %v, want open_for 30s", d)
	}
}

// TestFleetCloseOwnGrantOnly: a member's close removes the grant its open
// added, but not one a local knock wrote since.
func TestFleetCloseOwnGrantOnly(t *testing.T) {
	t.Parallel()
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			t.Parallel()
			f := newFleetFixture(t)
			f.receive(f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil), "bastion-1", false)
			if local {
				for _, port := range []uint16{7000, 8000, 9000} {
					f.l.observe(syn(port))
				}
				f.l.flush()
			}
			n := len(f.tbl.calls)
			f.receive(f.record(t, "bastion-1", fleet.KindClose, client, 30*time.Second, nil), "bastion-1", false)
			revoked := len(f.tbl.calls) > n && len(f.tbl.calls[n].Revokes) == 1
			if revoked == local {
				t.Errorf("revoked = %v after a local grant = %v: calls %+v", revoked, local, f.tbl.calls)
			}
		})
	}
}

// TestFleetDeliverNeverBlocks: a flood of records from the link beyond the
// queue is dropped and counted, and deliver does not block.
func TestFleetDeliverNeverBlocks(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range fleetInQueue + 100 {
			f.fs.deliver(fleetRecord{data: []byte("x"), group: "web"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deliver blocked")
	}
	if got := value(f.fs.met.dropped); got != 100 {
		t.Errorf("dropped = %v, want 100", got)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// publishedBy runs fs's publisher until one record reaches its fake link.
func publishedBy(t *testing.T, fs *fleetState) fakePub {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go fs.runPublisher(ctx)
	select {
	case p := <-fs.link.(*fakeLink).published:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published")
	}
	return fakePub{}
}

// TestFleetSPAReplayRefusedAtOtherMember: an SPA packet that opened at
// member a is published with its digest; member b, which applied the
// record, refuses the same packet sent to it. Without the record, b
// accepts it (the control: the refusal is the burn's doing).
func TestFleetSPAReplayRefusedAtOtherMember(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("record applied=%v", shared), func(t *testing.T) {
			pa, keys := spaPolicy(t, false)
			pa.Doors[0].FleetGroups = []string{"web"}
			pb := *pa
			pb.StateDir = t.TempDir()
			members, fkeys := testMembers(t, map[string]string{"a": `{ web = ["spa"] }`, "b": `{ web = ["spa"] }`})
			host := func(p *policy.Policy, member string) (*loop, *spaState, *fakeTable) {
				log := slog.New(slog.DiscardHandler)
				s := newSPAState(log, nil)
				s.now = func() time.Time { return spaT0 }
				if err := s.update(p); err != nil {
					t.Fatal(err)
				}
				tbl := &fakeTable{}
				l := newLoop(log, tbl, p, knock.Config{})
				l.now = func() time.Time { return spaT0 }
				l.spa = s
				attachFleet(l, members, fkeys, member, nil)
				return l, s, tbl
			}
			la, sa, _ := host(pa, "a")
			lb, sb, tb := host(&pb, "b")
			msg := spa.Message{User: "a", Type: spa.TypeAccess, Addr: netip.IPv4Unspecified(), Access: access("tcp/22")}
			h := spaHit(t, keys, "198.51.100.2", msg, spaT0)
			again := h
			again.Payload = bytes.Clone(h.Payload)
			if !sa.handle(context.Background(), &h) {
				t.Fatal("a did not take the SPA packet")
			}
			la.spaGrant(<-sa.out)
			la.flush()
			rec := publishedBy(t, la.fleet)
			if shared {
				lb.fleetReceive(fleetRecord{data: rec.env, from: "a", group: "web"})
				lb.flush()
				if len(tb.calls) != 1 {
					t.Fatalf("b applied %d batches, want the fleet grant", len(tb.calls))
				}
			}
			sb.handle(context.Background(), &again)
			var accepted bool
			select {
			case <-sb.out:
				accepted = true
			default:
			}
			if accepted == shared {
				t.Errorf("the same packet at b: accepted = %v, want %v", accepted, !shared)
			}
		})
	}
}

// TestFleetTOTPBurnShared: a TOTP open published by a member carries its
// code's burn, and the receiver burns it too (as after a restart).
func TestFleetTOTPBurnShared(t *testing.T) {
	t.Parallel()
	p := totpPolicy(t)
	p.Doors[0].FleetGroups = []string{"web"}
	members, keys := testMembers(t, map[string]string{"a": `{ web = ["vault"] }`, "b": `{ web = ["vault"] }`})
	l, _, now := newTestLoop(t, &fakeTable{}, p)
	attachFleet(l, members, keys, "b", nil)
	_, env, err := fleet.Origin{Fleet: "prod", Member: "a", Key: keys["a"]}.Record(fleet.KindOpen, "web", "vault", client,
		[]policy.PortProto{{Port: 2222, Proto: policy.TCP}}, 30*time.Second, *now, []string{fleet.TOTPBurn("alice", 59_999_999)})
	if err != nil {
		t.Fatal(err)
	}
	l.fleetReceive(fleetRecord{data: env, from: "a", group: "web"})
	l.flush()
	want := knock.Burn{Door: "vault", Client: "alice", Counter: 59_999_999}
	if !slices.Contains(l.tm.Burns(), want) {
		t.Errorf("burns after the record: %+v, want %+v among them", l.tm.Burns(), want)
	}
}

// TestFleetOneTimeReplayRefusedAtOtherMember: a one-time sequence used at
// member a is published with its key; member b, which shares the sequence
// file, no longer accepts it (in memory and in its state file), and a
// knock replaying it there opens nothing. Without the record, the replay
// opens b (the control).
func TestFleetOneTimeReplayRefusedAtOtherMember(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("record applied=%v", shared), func(t *testing.T) {
			dir := t.TempDir()
			seqFile := filepath.Join(dir, "seqs")
			if err := os.WriteFile(seqFile, []byte("7301,7002,7203\n7011,7412,7113\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			members, keys := testMembers(t, map[string]string{"a": `{ web = ["ot"] }`, "b": `{ web = ["ot"] }`})
			host := func(name string) (*loop, *fakeTable) {
				src := `state_dir = "` + filepath.Join(dir, name) + `"
fleet {
  name    = "prod"
  member  = "` + name + `"
  key     = "/k"
  members = "/m"
  groups  = ["web"]
  nats {
    servers = ["nats://192.0.2.10:4222"]
  }
}
door "ot" {
  one_time_sequences = "` + seqFile + `"
  open         = ["2222/tcp"]
  fleet_groups = ["web"]
}
`
				p, diags := policy.Parse(filepath.Join(dir, name+".hcl"), []byte(src))
				if diags.HasErrors() {
					t.Fatal(diags.Error())
				}
				tbl := &fakeTable{}
				l, _, _ := newTestLoop(t, tbl, p)
				attachFleet(l, members, keys, name, nil)
				return l, tbl
			}
			la, _ := host("a")
			lb, tb := host("b")
			for _, port := range []uint16{7301, 7002, 7203} {
				la.observe(syn(port))
			}
			la.flush()
			rec := publishedBy(t, la.fleet)
			if shared {
				lb.fleetReceive(fleetRecord{data: rec.env, from: "a", group: "web"})
				lb.flush()
			}
			n := len(tb.calls)
			for _, port := range []uint16{7301, 7002, 7203} {
				lb.observe(syn(port))
			}
			lb.flush()
			opened := len(tb.calls) > n
			if opened == shared {
				t.Errorf("the replayed sequence at b: opened = %v, want %v", opened, !shared)
			}
			if shared {
				if got := lb.p.Doors[0].Sequence; len(got) != 3 || got[0].Port != 7011 {
					t.Errorf("b's door sequence %v, want the next line's", got)
				}
				used, err := onetime.ReadUsed(lb.p.Doors[0].OneTimeUsed)
				if err != nil || len(used) != 1 {
					t.Errorf("b's state file: %v, %v; want the sequence recorded used", used, err)
				}
			}
		})
	}
}

// TestFleetTimeoutAtWrite: a fleet grant's timeout is the time left when
// its batch is written, not when its record was decided on.
func TestFleetTimeoutAtWrite(t *testing.T) {
	t.Parallel()
	f := newFleetFixture(t)
	rec := f.record(t, "bastion-1", fleet.KindOpen, client, 30*time.Second, nil)
	f.l.fleetReceive(fleetRecord{data: rec, from: "bastion-1", group: "web"})
	*f.now = f.now.Add(4 * time.Second) // the batch waits 4 s
	f.l.flush()
	if len(f.tbl.calls) != 1 || f.tbl.calls[0].Grants[0].TTL != 26*time.Second {
		t.Fatalf("Apply calls %+v, want one grant for the 26 s left", f.tbl.calls)
	}
}

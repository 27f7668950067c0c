package daemon

import (
	"testing"
	"time"

	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// TestEveryKindHandled: for every door kind, the loop has a way to open it
// (a knock matcher of its list, or the SPA reader), a grant target, and a
// rule for whether its lines are spoofable. A kind added to policy.Kinds
// and not here fails (docs/design.md, "How to add a door kind").
func TestEveryKindHandled(t *testing.T) {
	t.Parallel()
	open := []policy.PortProto{{Port: 22, Proto: policy.TCP}}
	seq := []policy.PortProto{{Port: 7000, Proto: policy.TCP}}
	doors := map[policy.Kind]*policy.Door{
		policy.KindStatic:  {Name: "s", Sequence: seq, Open: open, OpenFor: time.Minute, Confirm: true, ConfirmWithin: 10 * time.Second},
		policy.KindOneTime: {Name: "o", OneTimeFile: "f", Sequence: seq, Open: open, OpenFor: time.Minute},
		policy.KindTOTP:    {Name: "t", TOTP: &policy.TOTP{Lo: 20000, Hi: 29999, Length: 4, Step: 30 * time.Second, Proto: policy.TCP}, Open: open, OpenFor: time.Minute},
		policy.KindSPA:     {Name: "a", SPA: &policy.SPA{Port: 62201, MaxAge: time.Minute}, Open: open, OpenFor: time.Minute},
	}
	want := map[policy.Kind]struct {
		grant     nft.Kind
		spoofable bool // its open line
	}{
		policy.KindStatic:  {nft.Pending, true},
		policy.KindOneTime: {nft.Open, false},
		policy.KindTOTP:    {nft.Open, false},
		policy.KindSPA:     {nft.Open, false},
	}
	l := newLoop(nil, &fakeTable{}, &policy.Policy{}, knock.Config{MaxEntries: 16})
	for _, k := range policy.Kinds() {
		d, ok := doors[k]
		w, wok := want[k]
		if !ok || !wok {
			t.Errorf("kind %v: no test door or expectation", k)
			continue
		}
		if d.Kind() != k {
			t.Fatalf("test door of kind %v is of kind %v", k, d.Kind())
		}
		switch i := knock.MatcherFor(k); {
		case i >= 0 && i < len(l.ms):
		case i == -1 && k == policy.KindSPA: // spa.go reads its packets, spagrant.go grants
		default:
			t.Errorf("kind %v: matcher %d of a list of %d", k, i, len(l.ms))
		}
		dec := &knock.Decision{Kind: knock.Open, Door: d}
		if g := knockGrant(dec); g.Kind != w.grant {
			t.Errorf("kind %v: grant of kind %v, want %v", k, g.Kind, w.grant)
		}
		if got := spoofable(dec); got != w.spoofable {
			t.Errorf("kind %v: spoofable open = %v, want %v", k, got, w.spoofable)
		}
	}
}

// TestLoopObserveAllocs: handing a hit to every matcher of the list
// allocates nothing (a hit from an untracked source to a port no door
// uses: the common case of a flood).
func TestLoopObserveAllocs(t *testing.T) {
	p := totpPolicy(t)
	p.Doors = append(p.Doors, testPolicy(t, "7000/tcp", "8000/tcp", "9000/tcp").Doors...)
	l, _, _ := newTestLoop(t, &fakeTable{}, p)
	h := syn(4444)
	if n := testing.AllocsPerRun(1000, func() { l.observe(h) }); n != 0 {
		t.Errorf("observe: %v allocs per hit, want 0", n)
	}
}

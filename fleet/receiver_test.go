package fleet

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

func (f *testFleet) receiver() *Receiver {
	return NewReceiver(f.members, f.self, 64, 100, 100)
}

func (f *testFleet) origin(name string) Origin {
	return Origin{Fleet: "prod", Member: name, Key: f.keys[name]}
}

// TestReceiverRoundTrip: what an origin publishes, a receiver applies
// with the time left, once; the same bytes again are a replay.
func TestReceiverRoundTrip(t *testing.T) {
	f := newTestFleet(t)
	r := f.receiver()
	src := netip.MustParseAddr("2001:db8::2")
	ssh := []policy.PortProto{{Port: 22, Proto: policy.TCP}}
	burns := []string{TOTPBurn("alice", 42), SPABurn([32]byte{9})}
	id, env, err := f.origin("bastion-1").Record(KindOpen, "web", "ssh", src, ssh, 30*time.Second, f.now, burns)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered 400 ms later: 29.6 s left.
	a := r.Receive(env, "bastion-1", f.now.Add(400*time.Millisecond))
	if !a.Applies() || a.ID != id || a.Src != src || a.Timeout != 29600*time.Millisecond {
		t.Fatalf("receive: %+v", a)
	}
	k := [32]byte{9}
	if diff := cmp.Diff([]Burn{{Client: "alice", Counter: 42}, {SPA: &k}}, a.Burns); diff != "" {
		t.Errorf("burns (-want +got):\n%s", diff)
	}
	// Before Landed the id is not remembered (a failed grant can come again).
	if again := r.Receive(env, "bastion-1", f.now.Add(time.Second)); !again.Applies() {
		t.Errorf("before Landed: %v", again.Reason)
	}
	r.Landed(a)
	if again := r.Receive(env, "bastion-1", f.now.Add(time.Second)); again.Reason != ReasonReplayedID {
		t.Errorf("after Landed: %v, want replayed-id", again.Reason)
	}
	// After not_after the record is expired, not replayed, and forgotten.
	r.Expire(f.now.Add(30 * time.Second))
	if late := r.Receive(env, "bastion-1", f.now.Add(30*time.Second)); late.Reason != ReasonExpired {
		t.Errorf("after not_after: %v, want expired", late.Reason)
	}
	if r.Seen.Len() != 0 || r.Writers() != 0 {
		t.Errorf("after Expire: %d ids, %d writers", r.Seen.Len(), r.Writers())
	}
}

// TestReceiverClose: a close removes what its origin's open added, and
// nothing of another origin's or of a local grant.
func TestReceiverClose(t *testing.T) {
	f := newTestFleet(t)
	src := netip.MustParseAddr("198.51.100.2")
	ssh22 := []policy.PortProto{{Port: 22, Proto: policy.TCP}}
	both := []policy.PortProto{{Port: 22, Proto: policy.TCP}, {Port: 2222, Proto: policy.TCP}}
	rec := func(t *testing.T, r *Receiver, who, kind string, ports []policy.PortProto, at time.Duration) Action {
		t.Helper()
		_, env, err := f.origin(who).Record(kind, "web", "ssh", src, ports, 30*time.Second, f.now.Add(at), nil)
		if err != nil {
			t.Fatal(err)
		}
		a := r.Receive(env, who, f.now.Add(at))
		if !a.Applies() {
			t.Fatalf("%s %s: %v", who, kind, a.Reason)
		}
		r.Landed(a)
		return a
	}
	t.Run("own open", func(t *testing.T) {
		r := f.receiver()
		rec(t, r, "bastion-1", KindOpen, both, 0)
		c := rec(t, r, "bastion-1", KindClose, ssh22, time.Second)
		if !c.Revoke || !cmp.Equal(c.RevokePorts, both) {
			t.Errorf("close: revoke %v %v, want what the open added, %v", c.Revoke, c.RevokePorts, both)
		}
		if again := rec(t, r, "bastion-1", KindClose, ssh22, 2*time.Second); again.Revoke {
			t.Error("a second close revoked again")
		}
	})
	t.Run("another origin's open", func(t *testing.T) {
		r := f.receiver()
		rec(t, r, "bastion-2", KindOpen, both, 0)
		if c := rec(t, r, "bastion-1", KindClose, ssh22, time.Second); c.Revoke {
			t.Error("bastion-1's close removed bastion-2's grant")
		}
	})
	t.Run("local grant since", func(t *testing.T) {
		r := f.receiver()
		rec(t, r, "bastion-1", KindOpen, both, 0)
		r.Local("ssh", src)
		if c := rec(t, r, "bastion-1", KindClose, ssh22, time.Second); c.Revoke {
			t.Error("a fleet close removed a local grant")
		}
	})
	t.Run("refused close", func(t *testing.T) {
		r := f.receiver()
		rec(t, r, "bastion-1", KindOpen, both, 0)
		_, env, _ := f.origin("bastion-1").Record(KindClose, "web", "ssh", src, ssh22, 30*time.Second, f.now, nil)
		if a := r.Receive(env, "bastion-2", f.now); a.Applies() || a.Revoke {
			t.Errorf("close delivered under another name: %+v", a)
		}
	})
}

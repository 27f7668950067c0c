package knock

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sesame-knock/sesame/policy"
)

const (
	srcA = "198.51.100.2"
	srcB = "203.0.113.7"
	src6 = "2001:db8::1"
	ms   = time.Millisecond
	sec  = time.Second
)

func TestObserve(t *testing.T) {
	t.Parallel()
	ssh := door("ssh", "7000/tcp,8000/udp,9000/tcp", "")
	finDoor := door("fin", "7100/tcp,7200/tcp", "")
	finDoor.TCPFlags = policy.TCPFlags{Mask: fin | syn, Want: fin} // "fin,!syn"
	tests := []struct {
		name string
		in   *policy.Policy
		evs  []ev
		want []string
	}{{
		name: "full sequence opens",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(100*ms, srcA, "8000/udp"), s(200*ms, srcA, "9000/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "retransmitted SYNs at each stage are ignored",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1*sec, srcA, "7000/tcp"),
			s(2*sec, srcA, "8000/udp"), s(3*sec, srcA, "8000/udp"), s(3*sec, srcA, "8000/udp"),
			s(4*sec, srcA, "9000/tcp"), s(4*sec, srcA, "9000/tcp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#2 stage ssh 198.51.100.2 2/3 8000/udp",
			"#5 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "a repeat does not reach back: stage 2 then the first step again restarts",
		in:   pol(door("d", "7000,8000,9000", "")),
		evs:  []ev{s(0, srcA, "7000"), s(1, srcA, "8000"), s(2, srcA, "7000"), s(3, srcA, "9000")},
		want: []string{
			"#0 stage d 198.51.100.2 1/3 7000/tcp",
			"#1 stage d 198.51.100.2 2/3 8000/tcp",
			"#2 stage d 198.51.100.2 1/3 7000/tcp",
			"#3 reset d 198.51.100.2 1/3 9000/tcp wrong-port",
		},
	}, {
		name: "wrong knock port of the same door resets",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(1, srcA, "9000/tcp"), s(2, srcA, "8000/udp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 reset ssh 198.51.100.2 1/3 9000/tcp wrong-port",
		},
	}, {
		name: "knock port of another door resets as wrong-port",
		in:   pol(ssh, door("web", "6000/tcp,6001/tcp", "")),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(1, srcA, "8000/udp"), s(2, srcA, "6001/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 reset ssh 198.51.100.2 2/3 6001/tcp wrong-port",
		},
	}, {
		name: "the same port number over the other protocol is wrong",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(1, srcA, "8000/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 reset ssh 198.51.100.2 1/3 8000/tcp other-port",
		},
	}, {
		name: "bare SYN to a non-knock port mid-sequence resets other-port",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1, srcA, "8000/udp"),
			hitEv(2, srcA, "22/tcp", syn), s(3, srcA, "9000/tcp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 reset ssh 198.51.100.2 2/3 22/tcp other-port",
		},
	}, {
		name: "UDP to a non-knock port mid-sequence resets other-port",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(1, srcA, "53/udp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 reset ssh 198.51.100.2 1/3 53/udp other-port",
		},
	}, {
		name: "ACK packets are ignored under syn,!ack, to knock ports and others",
		in:   pol(ssh),
		evs: []ev{
			hitEv(0, srcA, "7000/tcp", ack), // no entry made
			s(1, srcA, "7000/tcp"),
			hitEv(2, srcA, "9000/tcp", ack),    // would be wrong-port
			hitEv(3, srcA, "22/tcp", synAck),   // would be other-port
			hitEv(4, srcA, "22/tcp", ack|fin),  // would be other-port
			s(5, srcA, "8000/udp"),             //
			hitEv(6, srcA, "9000/tcp", synAck), // not the knock
			s(7, srcA, "9000/tcp"),
		},
		want: []string{
			"#1 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#5 stage ssh 198.51.100.2 2/3 8000/udp",
			"#7 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "first port restarts at stage 1 without a reset, and the timeout runs from the restart",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1*sec, srcA, "8000/udp"),
			s(4*sec, srcA, "7000/tcp"), // restart
			s(8*sec, srcA, "8000/udp"), // 8s after the first hit, 4s after the restart
			s(9*sec, srcA, "9000/tcp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#3 stage ssh 198.51.100.2 2/3 8000/udp",
			"#4 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "a hit exactly at seq_timeout is in time",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(1*sec, srcA, "8000/udp"), s(5*sec, srcA, "9000/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "a late next step times out and starts nothing",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1*sec, srcA, "8000/udp"),
			s(5*sec+1, srcA, "9000/tcp"), s(6*sec, srcA, "9000/tcp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 timeout ssh 198.51.100.2 2/3 9000/tcp",
		},
	}, {
		name: "a late first step times out and starts over",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(6*sec, srcA, "7000/tcp"),
			s(7*sec, srcA, "8000/udp"), s(8*sec, srcA, "9000/tcp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 timeout ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#2 stage ssh 198.51.100.2 2/3 8000/udp",
			"#3 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "a late wrong port times out rather than resets",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "7000/tcp"), s(9*sec, srcA, "22/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 timeout ssh 198.51.100.2 1/3 22/tcp",
		},
	}, {
		name: "Expire emits Timeout once the deadline has passed, and only then",
		in:   pol(ssh, door("slow", "6000,6001", "")),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1*sec, srcB, "7000/tcp"), s(2*sec, srcB, "8000/udp"),
			s(2*sec, srcA, "6000"),
			expireAt(5 * sec), // nothing is past its deadline
			expireAt(5*sec + 1),
			expireAt(7 * sec),
			expireAt(9 * sec),
			s(10*sec, srcB, "9000/tcp"), // too late, and already gone
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 203.0.113.7 1/3 7000/tcp",
			"#2 stage ssh 203.0.113.7 2/3 8000/udp",
			"#3 reset ssh 198.51.100.2 1/3 6000/tcp wrong-port",
			"#3 stage slow 198.51.100.2 1/2 6000/tcp",
			"#6 timeout ssh 203.0.113.7 2/3",
			"#7 timeout slow 198.51.100.2 1/2",
		},
	}, {
		name: "two doors sharing a first port: the next hit advances one and resets the other",
		in:   pol(door("a", "7000,8000", ""), door("b", "7000,9000,9100", "")),
		evs:  []ev{s(0, srcA, "7000"), s(1, srcA, "9000"), s(2, srcA, "9100")},
		want: []string{
			"#0 stage a 198.51.100.2 1/2 7000/tcp",
			"#0 stage b 198.51.100.2 1/3 7000/tcp",
			"#1 reset a 198.51.100.2 1/2 9000/tcp wrong-port",
			"#1 stage b 198.51.100.2 2/3 9000/tcp",
			"#2 open b 198.51.100.2 3/3 9100/tcp",
		},
	}, {
		name: "close sequence that is the reverse of the open one",
		in:   pol(door("ssh", "7000,8000,9000", "9000,8000,7000")),
		evs: []ev{
			s(0, srcA, "7000"), s(1, srcA, "8000"), s(2, srcA, "9000"),
			s(3*sec, srcA, "9000"), s(3*sec+1, srcA, "8000"), s(3*sec+2, srcA, "7000"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/tcp",
			"#2 open ssh 198.51.100.2 3/3 9000/tcp",
			"#2 stage ssh(close) 198.51.100.2 1/3 9000/tcp",
			// #3 repeats the step just matched by the close sequence.
			"#4 stage ssh(close) 198.51.100.2 2/3 8000/tcp",
			"#5 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#5 close ssh(close) 198.51.100.2 3/3 7000/tcp",
		},
	}, {
		name: "close sequence progress is reset like an open one",
		in:   pol(door("ssh", "7000,8000", "9000,9100")),
		evs:  []ev{s(0, srcA, "9000"), s(1, srcA, "8000"), s(2, srcA, "9000"), s(3, srcA, "22")},
		want: []string{
			"#0 stage ssh(close) 198.51.100.2 1/2 9000/tcp",
			"#1 reset ssh(close) 198.51.100.2 1/2 8000/tcp wrong-port",
			"#2 stage ssh(close) 198.51.100.2 1/2 9000/tcp",
			"#3 reset ssh(close) 198.51.100.2 1/2 22/tcp other-port",
		},
	}, {
		name: "flag filter with negation: fin,!syn",
		in:   pol(finDoor),
		evs: []ev{
			hitEv(0, srcA, "7100/tcp", syn),     // ignored: no FIN
			hitEv(1, srcA, "7100/tcp", fin|syn), // ignored: SYN set
			hitEv(2, srcA, "7100/tcp", fin|ack), // ACK is not in the mask
			hitEv(3, srcA, "22/tcp", syn),       // fails the filter: not a reset
			hitEv(4, srcA, "7200/tcp", fin),
		},
		want: []string{
			"#2 stage fin 198.51.100.2 1/2 7100/tcp",
			"#4 open fin 198.51.100.2 2/2 7200/tcp",
		},
	}, {
		name: "a hit that passes the filter resets a fin,!syn door",
		in:   pol(finDoor),
		evs:  []ev{hitEv(0, srcA, "7100/tcp", fin), hitEv(1, srcA, "22/tcp", fin)},
		want: []string{
			"#0 stage fin 198.51.100.2 1/2 7100/tcp",
			"#1 reset fin 198.51.100.2 1/2 22/tcp other-port",
		},
	}, {
		name: "UDP steps ignore flags",
		in:   pol(door("u", "5000/udp,5001/udp", "")),
		evs:  []ev{hitEv(0, srcA, "5000/udp", ack), hitEv(1, srcA, "5001/udp", 0xff)},
		want: []string{
			"#0 stage u 198.51.100.2 1/2 5000/udp",
			"#1 open u 198.51.100.2 2/2 5001/udp",
		},
	}, {
		name: "UDP hits do not count for a sequence without UDP steps",
		in:   pol(door("t", "7000,8000,9000", "")),
		evs: []ev{
			s(0, srcA, "7000"), s(1, srcA, "53/udp"), s(2, srcA, "8000/udp"),
			s(3, srcA, "8000"), s(4, srcA, "7000/udp"), s(5, srcA, "9000"),
		},
		want: []string{
			"#0 stage t 198.51.100.2 1/3 7000/tcp",
			"#3 stage t 198.51.100.2 2/3 8000/tcp",
			"#5 open t 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "TCP hits do not count for a sequence without TCP steps",
		in:   pol(door("u", "7000/udp,8000/udp,9000/udp", "")),
		evs: []ev{
			s(0, srcA, "7000/udp"), s(1, srcA, "22/tcp"), s(2, srcA, "8000/udp"),
			hitEv(3, srcA, "8001/tcp", fin), s(4, srcA, "9000/tcp"), s(5, srcA, "9000/udp"),
		},
		want: []string{
			"#0 stage u 198.51.100.2 1/3 7000/udp",
			"#2 stage u 198.51.100.2 2/3 8000/udp",
			"#5 open u 198.51.100.2 3/3 9000/udp",
		},
	}, {
		name: "an ascending UDP sweep resets a UDP sequence at the next port",
		in:   pol(door("u", "7000/udp,8000/udp,9000/udp", "")),
		evs:  []ev{s(0, srcA, "6999/udp"), s(1, srcA, "7000/udp"), s(2, srcA, "7001/udp"), s(3, srcA, "8000/udp"), s(4, srcA, "9000/udp")},
		want: []string{
			"#1 stage u 198.51.100.2 1/3 7000/udp",
			"#2 reset u 198.51.100.2 1/3 7001/udp other-port",
		},
	}, {
		name: "a close sequence counts only its own protocols",
		in:   pol(door("c", "7000,8000,9000", "9000/udp,8000/udp")),
		evs: []ev{
			s(0, srcA, "9000/udp"), s(1, srcA, "22/tcp"), s(2, srcA, "8000/udp"),
			s(3, srcA, "7000"), s(4, srcA, "53/udp"), s(5, srcA, "8000"), s(6, srcA, "9000"),
		},
		want: []string{
			"#0 stage c(close) 198.51.100.2 1/2 9000/udp",
			"#2 close c(close) 198.51.100.2 2/2 8000/udp",
			"#3 stage c 198.51.100.2 1/3 7000/tcp",
			"#5 stage c 198.51.100.2 2/3 8000/tcp",
			"#6 open c 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "IPv6 source",
		in:   pol(ssh),
		evs:  []ev{s(0, src6, "7000/tcp"), s(1, src6, "8000/udp"), s(2, src6, "9000/tcp")},
		want: []string{
			"#0 stage ssh 2001:db8::1 1/3 7000/tcp",
			"#1 stage ssh 2001:db8::1 2/3 8000/udp",
			"#2 open ssh 2001:db8::1 3/3 9000/tcp",
		},
	}, {
		name: "4-in-6 sources are the IPv4 source",
		in:   pol(ssh),
		evs:  []ev{s(0, "::ffff:198.51.100.2", "7000/tcp"), s(1, srcA, "8000/udp"), s(2, "::ffff:198.51.100.2", "9000/tcp")},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 198.51.100.2 2/3 8000/udp",
			"#2 open ssh 198.51.100.2 3/3 9000/tcp",
		},
	}, {
		name: "IPv6 zones are not part of the source",
		in:   pol(door("d", "7000,8000", "")),
		evs:  []ev{s(0, "fe80::1%eth0", "7000"), s(1, "fe80::1", "8000")},
		want: []string{
			"#0 stage d fe80::1 1/2 7000/tcp",
			"#1 open d fe80::1 2/2 8000/tcp",
		},
	}, {
		name: "two sources interleave independently",
		in:   pol(ssh),
		evs: []ev{
			s(0, srcA, "7000/tcp"), s(1, srcB, "7000/tcp"), s(2, src6, "7000/tcp"),
			s(3, srcB, "8000/udp"), s(4, srcA, "8000/udp"),
			s(5, srcB, "22/tcp"), // resets B only
			s(6, srcA, "9000/tcp"), s(7, src6, "8000/udp"),
		},
		want: []string{
			"#0 stage ssh 198.51.100.2 1/3 7000/tcp",
			"#1 stage ssh 203.0.113.7 1/3 7000/tcp",
			"#2 stage ssh 2001:db8::1 1/3 7000/tcp",
			"#3 stage ssh 203.0.113.7 2/3 8000/udp",
			"#4 stage ssh 198.51.100.2 2/3 8000/udp",
			"#5 reset ssh 203.0.113.7 2/3 22/tcp other-port",
			"#6 open ssh 198.51.100.2 3/3 9000/tcp",
			"#7 stage ssh 2001:db8::1 2/3 8000/udp",
		},
	}, {
		name: "steps may repeat non-consecutively",
		in:   pol(door("d", "7000,8000,7000", "")),
		evs:  []ev{s(0, srcA, "7000"), s(1, srcA, "8000"), s(2, srcA, "7000"), s(3, srcA, "7000")},
		want: []string{
			"#0 stage d 198.51.100.2 1/3 7000/tcp",
			"#1 stage d 198.51.100.2 2/3 8000/tcp",
			"#2 open d 198.51.100.2 3/3 7000/tcp",
			"#3 stage d 198.51.100.2 1/3 7000/tcp",
		},
	}, {
		name: "a 1-step sequence opens at once, every time",
		in:   pol(door("one", "7000", "")),
		evs:  []ev{s(0, srcA, "7000"), s(1, srcA, "7000"), s(2, srcA, "22")},
		want: []string{
			"#0 open one 198.51.100.2 1/1 7000/tcp",
			"#1 open one 198.51.100.2 1/1 7000/tcp",
		},
	}, {
		name: "hits with no entry and not a first step do nothing",
		in:   pol(ssh),
		evs:  []ev{s(0, srcA, "8000/udp"), s(1, srcA, "9000/tcp"), s(2, srcA, "22/tcp")},
		want: nil,
	}, {
		name: "a policy without doors",
		in:   pol(),
		evs:  []ev{s(0, srcA, "7000/tcp"), expireAt(time.Hour)},
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := New(tt.in, Config{MaxEntries: 64})
			got := run(t, m, tt.evs)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

package onetime

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	got, err := Parse([]byte("# c\n 7000,8000:udp, 9000/tcp\n\n  #7001 8001\n7002\t8002:UDP\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Seq{
		{Line: 2, Steps: []Step{{7000, "tcp"}, {8000, "udp"}, {9000, "tcp"}}},
		{Line: 5, Steps: []Step{{7002, "tcp"}, {8002, "udp"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"7000,0", "7000:icmp", "7000,7000", "x"} {
		var le *LineError
		if _, err := Parse([]byte(bad)); !errors.As(err, &le) || le.Line != 1 {
			t.Errorf("Parse(%q) = %v, want a line 1 error", bad, err)
		}
	}
}

// Key depends on the steps only, not on how the line is written.
func TestKey(t *testing.T) {
	t.Parallel()
	seqs, err := Parse([]byte("7000,8000:udp,9000\n 7000/TCP 8000/UDP\t9000:tcp\n7000,8000,9000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if seqs[0].Key() != seqs[1].Key() {
		t.Errorf("the same steps written two ways have keys %s and %s", seqs[0].Key(), seqs[1].Key())
	}
	if seqs[0].Key() == seqs[2].Key() {
		t.Errorf("8000/udp and 8000/tcp sequences share key %s", seqs[0].Key())
	}
	if k := seqs[0].Key(); len(k) != 64 {
		t.Errorf("key %q: want 64 hex digits", k)
	}
}

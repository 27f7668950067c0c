package totp

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The vectors of docs/TOTP.md, cross-checked when written against an
// independent Python implementation of the documented algorithm.
func TestVectors(t *testing.T) {
	t.Parallel()
	secret := []byte("12345678901234567890")
	for _, tt := range []struct {
		unix  int64
		ctr   uint64
		wide  []uint16 // 20000-29999, length 4
		small []uint16 // 1000-1009, length 8: exercises rejection and duplicates
	}{
		{59, 1, []uint16{28285, 25439, 23431, 24166}, []uint16{1005, 1009, 1001, 1006, 1007, 1002, 1008, 1003}},
		{1111111109, 37037036, []uint16{28656, 26374, 28622, 21801}, []uint16{1006, 1004, 1002, 1001, 1007, 1003, 1000, 1008}},
		{1234567890, 41152263, []uint16{26990, 26119, 25229, 21714}, []uint16{1000, 1009, 1004, 1008, 1007, 1001, 1003, 1006}},
		{2000000000, 66666666, []uint16{25312, 29140, 29344, 28239}, []uint16{1002, 1000, 1004, 1009, 1003, 1007, 1008, 1001}},
	} {
		c := Counter(time.Unix(tt.unix, 0), 30*time.Second)
		if c != tt.ctr {
			t.Errorf("Counter(%d) = %d, want %d", tt.unix, c, tt.ctr)
		}
		if diff := cmp.Diff(tt.wide, Sequence(secret, c, 20000, 29999, 4)); diff != "" {
			t.Errorf("t=%d 20000-29999 (-want +got):\n%s", tt.unix, diff)
		}
		if diff := cmp.Diff(tt.small, Sequence(secret, c, 1000, 1009, 8)); diff != "" {
			t.Errorf("t=%d 1000-1009 (-want +got):\n%s", tt.unix, diff)
		}
	}
	if got, want := EncodeSecret(secret), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; got != want {
		t.Errorf("EncodeSecret = %q, want %q", got, want)
	}
}

func TestSequenceDistinctInRange(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef")
	for c := uint64(0); c < 500; c++ {
		s := Sequence(secret, c, 100, 131, 32) // every port of a 32-port range
		seen := map[uint16]bool{}
		for _, p := range s {
			if p < 100 || p > 131 || seen[p] {
				t.Fatalf("counter %d: %v: out of range or repeated", c, s)
			}
			seen[p] = true
		}
	}
}

func TestEntropy(t *testing.T) {
	t.Parallel()
	if got := EntropyBits(10000, 4); math.Abs(got-53.15) > 0.01 {
		t.Errorf("EntropyBits(10000, 4) = %.3f, want about 53.15", got)
	}
	if got := EntropyBits(100, 4); got >= MinEntropyBits {
		t.Errorf("EntropyBits(100, 4) = %.3f, want under 32", got)
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		wantLen int
		short   bool
		bad     bool
	}{
		{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n", 20, false, false},
		{"gezd gnbv gy3t qojq gezd gnbv gy3t qojq", 20, false, false},
		{"GEZDGNBVGY3TQOJQ", 10, true, false},
		{"", 0, true, false},
		{"not base32!", 0, false, true},
	} {
		b, err := ParseSecret([]byte(tt.in))
		switch {
		case tt.short && !errors.Is(err, ErrShortSecret), tt.bad && (err == nil || errors.Is(err, ErrShortSecret)):
			t.Errorf("ParseSecret(%q) = %v, want short=%v bad=%v", tt.in, err, tt.short, tt.bad)
		case !tt.short && !tt.bad && (err != nil || len(b) != tt.wantLen):
			t.Errorf("ParseSecret(%q) = %d bytes, %v; want %d bytes", tt.in, len(b), err, tt.wantLen)
		}
	}
}

package capture

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRoute4(t *testing.T) {
	t.Parallel()
	const head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	for _, tt := range []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"default and link route", head +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
			"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", []string{"eth0"}, false},
		{"two defaults", head +
			"wan1\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
			"wan0\t00000000\t010264C6\t0003\t0\t0\t200\t00000000\t0\t0\t0\n", []string{"wan1", "wan0"}, false},
		{"down default", head + "eth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n", nil, false},
		{"reject default", head + "eth0\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n", nil, false},
		{"no default", head + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", nil, false},
		{"header only", head, nil, false},
		{"short line", head + "eth0\t00000000\n", nil, true},
		{"bad flags", head + "eth0\t00000000\t010200C0\tzz\t0\t0\t0\t00000000\t0\t0\t0\n", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRoute4(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRoute6(t *testing.T) {
	t.Parallel()
	const (
		zero   = "00000000000000000000000000000000"
		def    = zero + " 00 " + zero + " 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
		link   = "fe800000000000000000000000000000 40 " + zero + " 00 " + zero + " 00000100 00000002 00000000 00000001     eth0\n"
		reject = zero + " 00 " + zero + " 00 " + zero + " ffffffff 00000001 00000000 00200200       lo\n"
		local  = "00000000000000000000000000000001 80 " + zero + " 00 " + zero + " 00000000 00000004 00000000 80200001       lo\n"
	)
	for _, tt := range []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"default", link + def + local + reject, []string{"eth0"}, false},
		{"only lo reject", local + reject, nil, false},
		{"default via wan", zero + " 00 " + zero + " 00 fe800000000000000000000000000001 00000400 00000002 00000000 00000003 wan\n", []string{"wan"}, false},
		{"empty", "", nil, false},
		{"short line", zero + " 00\n", nil, true},
		{"bad flags", zero + " 00 " + zero + " 00 " + zero + " 00000400 00000002 00000000 xyz eth0\n", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRoute6(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

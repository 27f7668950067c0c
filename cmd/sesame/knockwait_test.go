package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/client"
	"github.com/sesame-knock/sesame/policy"
)

func TestParseKnockWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    knockOpts
		wantErr string
	}{
		{name: "--wait port", in: []string{"--wait", "22", "h", "1"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(1)}, Wait: 22, WaitFor: client.DefaultWait}},
		{name: "--wait=port/tcp --wait-for", in: []string{"--wait=22/tcp", "--wait-for=2s", "h", "1"},
			want: knockOpts{Host: "h", Steps: []policy.PortProto{tcp(1)}, Wait: 22, WaitFor: 2 * time.Second}},
		{name: "--wait udp", in: []string{"--wait", "53/udp", "h", "1"}, wantErr: "only a tcp port"},
		{name: "--wait garbage", in: []string{"--wait", "ssh", "h", "1"}, wantErr: `bad --wait "ssh"`},
		{name: "--wait-for alone", in: []string{"--wait-for", "2s", "h", "1"}, wantErr: "needs --wait"},
		{name: "--wait-for too long", in: []string{"--wait", "22", "--wait-for", "1h", "h", "1"}, wantErr: "at most 5m"},
		{name: "--wait without value", in: []string{"h", "1", "--wait"}, wantErr: "--wait needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseKnockArgs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !isUsageError(err) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		line     string
		want     string
		wantErr  string // in the error text, with the file:line
		wantWarn bool
	}{
		{name: "off by default", line: ""},
		{name: "loopback", line: `metrics_listen = "127.0.0.1:9813"`, want: "127.0.0.1:9813"},
		{name: "ipv6 loopback", line: `metrics_listen = "[::1]:9813"`, want: "[::1]:9813"},
		{name: "public warns", line: `metrics_listen = "192.0.2.1:9813"`, want: "192.0.2.1:9813", wantWarn: true},
		{name: "host name", line: `metrics_listen = "localhost:9813"`, wantErr: "s.hcl:1,18-34: Invalid metrics_listen"},
		{name: "no port", line: `metrics_listen = "127.0.0.1"`, wantErr: "Invalid metrics_listen"},
		{name: "port zero", line: `metrics_listen = "127.0.0.1:0"`, wantErr: "Invalid metrics_listen"},
		{name: "not a string", line: `metrics_listen = 9813`, wantErr: "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "s.hcl")
			text := tt.line + "\ndoor \"ssh\" {\n  sequence = [\"7000\", \"8000\", \"9000\"]\n  open = [\"22/tcp\"]\n}\n"
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			p, diags := Load(path)
			if tt.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diags = %v, want an error with %q", diags.Error(), tt.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if p.MetricsListen != tt.want {
				t.Errorf("MetricsListen = %v, want %v", p.MetricsListen, tt.want)
			}
			if got := len(diags.Warnings()) > 0; got != tt.wantWarn {
				t.Errorf("warnings = %v, want some: %v", diags.Warnings(), tt.wantWarn)
			}
		})
	}
}

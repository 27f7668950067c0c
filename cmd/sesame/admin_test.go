package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    netip.Addr
		wantErr string
	}{
		{in: "198.51.100.7", want: netip.MustParseAddr("198.51.100.7")},
		{in: "2001:db8::7", want: netip.MustParseAddr("2001:db8::7")},
		{in: "::ffff:192.0.2.1", want: netip.MustParseAddr("192.0.2.1")},
		{in: "192.0.2.0/24", wantErr: "not a prefix"},
		{in: "example.com", wantErr: "want an IPv4 or IPv6 address"},
		{in: "", wantErr: "want an IPv4 or IPv6 address"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "0.0.0.0", wantErr: "unicast"},
		{in: "ff02::1", wantErr: "unicast"},
		{in: "255.255.255.255", wantErr: "unicast"},
	}
	for _, tt := range tests {
		got, err := parseAddr(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseAddr(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseAddr(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// Argument errors are caught before any kernel access, so these run
// unprivileged.
func TestAdminArgs(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "s.hcl")
	if err := os.WriteFile(cfg, []byte("door \"ssh\" {\n sequence = [\"7000\", \"8000\"]\n open = [\"22/tcp\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"grant", "-c", cfg, "ssh"}, "want DOOR ADDR"},
		{[]string{"grant", "-c", cfg, "web", "192.0.2.1"}, `no door "web"`},
		{[]string{"grant", "-c", cfg, "ssh", "192.0.2.1", "--for", "10ms"}, "want 1s to"},
		{[]string{"revoke", "-c", cfg, "ssh", "192.0.2.0/24"}, "not a prefix"},
		{[]string{"down", "-c", cfg}, "--yes"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("sesame %v: exit %d, stderr %q; want exit 2 and %q", tt.args, code, errb.String(), tt.want)
		}
	}
}

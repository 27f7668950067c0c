package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Every verb's -h prints its usage and exits 0, as `sesame -h` does; a bad
// flag still exits 2.
func TestVerbHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		verb string
		want string // in the usage
	}{
		{"run", "-log-level"},
		{"check", "-ruleset"},
		{"status", "-json"},
		{"keygen", "usage: sesame keygen"},
		{"grant", "usage: sesame grant [-c FILE] [--for DURATION] DOOR ADDR"},
		{"revoke", "usage: sesame revoke [-c FILE] DOOR ADDR"},
		{"down", "-yes"},
		{"knock", "usage: sesame knock"},
		{"convert", "usage: sesame convert"},
	}
	for _, tt := range tests {
		for _, flag := range []string{"-h", "--help"} {
			var out, errb bytes.Buffer
			code := run([]string{tt.verb, flag}, &out, &errb)
			if code != 0 || !strings.Contains(out.String()+errb.String(), tt.want) {
				t.Errorf("sesame %s %s: exit %d, output %q; want exit 0 and the usage (%q)", tt.verb, flag, code, out.String()+errb.String(), tt.want)
			}
		}
		var out, errb bytes.Buffer
		if code := run([]string{tt.verb, "--no-such-flag"}, &out, &errb); code != 2 {
			t.Errorf("sesame %s --no-such-flag: exit %d, want 2", tt.verb, code)
		}
	}
}

// A config that cannot be read is reported by status without hcl's
// "<nil>:" position prefix.
func TestStatusUnreadableConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.hcl")
	var out, errb bytes.Buffer
	// Status then reads table sesame (only reads): whatever it finds, the
	// config line comes first.
	run([]string{"status", "-c", path}, &out, &errb)
	if strings.Contains(errb.String(), "<nil>") || !strings.Contains(errb.String(), "Cannot read config file "+path) {
		t.Errorf("status: stderr %q; want the unreadable config named without <nil>", errb.String())
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
)

// TestKnockdFlagHabits: every way knockd's knock(1) users write flags
// (getopt_long) means the same to sesame knock.
func TestKnockdFlagHabits(t *testing.T) {
	t.Parallel()
	want := knockOpts{Host: "h", Verbose: true, Delay: 100 * time.Millisecond, Steps: []policy.PortProto{udp(7000), tcp(8000)}}
	tests := []struct {
		name string
		in   []string
		want knockOpts
	}{
		{name: "separate flags", in: []string{"-u", "-v", "-d", "100", "h", "7000", "8000:tcp"}, want: want},
		{name: "-uv grouping", in: []string{"-uv", "-d", "100", "h", "7000", "8000:tcp"}, want: want},
		{name: "-d100 attached", in: []string{"-uv", "-d100", "h", "7000", "8000:tcp"}, want: want},
		{name: "-uvd100 in one group", in: []string{"-uvd100", "h", "7000", "8000:tcp"}, want: want},
		{name: "-d=100", in: []string{"-uv", "-d=100", "h", "7000", "8000:tcp"}, want: want},
		{name: "--delay=100", in: []string{"--udp", "--verbose", "--delay=100", "h", "7000", "8000:tcp"}, want: want},
		{name: "--delay 100", in: []string{"--udp", "--verbose", "--delay", "100", "h", "7000", "8000:tcp"}, want: want},
		{name: "flags after operands", in: []string{"h", "7000", "8000:tcp", "-uv", "--delay", "100"}, want: want},
		{name: "flags between operands", in: []string{"h", "-u", "7000", "-d100", "8000:tcp", "-v"}, want: want},
		{name: "PORT/PROTO", in: []string{"-uvd100", "h", "7000/udp", "8000/tcp"}, want: want},
		{name: "-- ends flags", in: []string{"-uvd100", "--", "h", "7000", "8000:tcp"}, want: want},
		{name: "-4", in: []string{"-4", "h", "1"}, want: knockOpts{Host: "h", Family: 4, Steps: []policy.PortProto{tcp(1)}}},
		{name: "-6 after operands", in: []string{"h", "1", "-6"}, want: knockOpts{Host: "h", Family: 6, Steps: []policy.PortProto{tcp(1)}}},
		{name: "--ipv4 --ipv6: the last wins", in: []string{"--ipv4", "h", "1", "--ipv6"}, want: knockOpts{Host: "h", Family: 6, Steps: []policy.PortProto{tcp(1)}}},
		{name: "-h in a group", in: []string{"-uh", "h", "1"}, want: knockOpts{Help: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseKnockArgs(tt.in)
			if err != nil {
				t.Fatalf("parseKnockArgs(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseKnockArgs(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestKnockFlagErrors: what getopt refuses is a usage error, exit 2.
func TestKnockFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		wantErr string
	}{
		{[]string{"h", "--", "-u"}, `bad port "-u"`}, // after --, a flag is an operand
		{[]string{"-uz", "h", "1"}, "unknown option -z"},
		{[]string{"-v=1", "h", "1"}, "option --verbose takes no value"},
		{[]string{"--ipv6=yes", "h", "1"}, "option --ipv6 takes no value"},
		{[]string{"h", "1", "-vd"}, "option -d needs a value"},
		{[]string{"-A", "tcp/22", "h", "1"}, "option -A goes with --spa KEYFILE"},
		{[]string{"--hmac-digest", "sha512", "h", "1"}, "option --hmac-digest goes with --spa KEYFILE"},
		{[]string{"--spa", "k", "-u", "h"}, "option -u does not go with --spa"},
		{[]string{"--spa", "k", "--totp", "s", "h"}, "option --totp does not go with --spa"},
		{[]string{"--spa", "k", "-4", "-6", "h"}, "-4 and -6 exclude each other"},
		{[]string{"--spa", "k", "-s", "-a", "192.0.2.1", "h"}, "-a and -s exclude each other"},
		{[]string{"--spa", "k", "-P0", "h"}, "bad -P 0"},
		{[]string{"--spa", "k", "-f", "86401", "h"}, "bad -f 86401"},
		{[]string{"--spa", "k", "h", "h2"}, "want one HOST, got 2 operands"},
		{[]string{"--spa", "k", "-A", "tcp/none", "h"}, `bad -A "tcp/none"`},
		{[]string{"--spa=", "-A", "tcp/22"}, "want one HOST, got 0 operands"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(append([]string{"knock"}, tt.in...), &out, &errb); code != 2 || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("sesame knock %q: exit %d, stderr %q; want exit 2 and %q", tt.in, code, errb.String(), tt.wantErr)
		}
	}
}

// TestSPAFlagHabits: fwknop's flags group and follow HOST (getopt), and
// the single-dash long forms of Go's flag package still parse.
func TestSPAFlagHabits(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "k.spa")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--spa", "-o", key}, &out, &errb); code != 0 {
		t.Fatalf("keygen --spa: exit %d: %s", code, errb.String())
	}
	for _, in := range [][]string{
		{"--spa", key, "-A", "tcp/22,udp/53", "-f", "90", "-s", "-v", "-P", "62202", "h"},
		{"--spa=" + key, "-svf90", "-Atcp/22,udp/53", "-P62202", "h"},
		{"h", "--spa", key, "-sv", "-f", "90", "--access", "tcp/22,udp/53", "--server-port=62202"},
		{"-spa", key, "h", "-A", "tcp/22,udp/53", "-f", "90", "-s", "-v", "-P", "62202"},
		{"--spa", key, "h", "--A", "tcp/22,udp/53", "--f=90", "--s", "--v", "--P", "62202"},
	} {
		o, err := parseKnockArgs(in)
		if err != nil {
			t.Errorf("parseKnockArgs(%q): %v", in, err)
			continue
		}
		if o.Host != "h" || !o.Verbose || o.SPA == nil || !o.SPA.req.Source || o.SPA.req.For != 90*time.Second ||
			o.SPA.server != 62202 || len(o.SPA.req.Access) != 2 || o.SPA.KeyFile != key {
			t.Errorf("parseKnockArgs(%q) = %+v (spa %+v)", in, o, o.SPA)
		}
	}
}

// TestVerbFlags: the other verbs take GNU flags anywhere, the single-dash
// long forms Go's flag package took, and refuse unknown flags with exit 2.
func TestVerbFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s.hcl")
	if err := os.WriteFile(cfg, []byte("door \"ssh\" {\n sequence = [\"7000\", \"8000\", \"9000\"]\n open = [\"22/tcp\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	knockd := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(knockd, []byte("[ssh]\n sequence = 7000,8000,9000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args       []string
		wantStatus int
		wantOut    string // in stdout
		wantErr    string // in stderr
	}{
		{args: []string{"check", "-c", cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "--config=" + cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "-c" + cfg, "--ruleset"}, wantOut: "table inet sesame"},
		{args: []string{"check", "-ruleset", "-c", cfg}, wantOut: "table inet sesame"},
		{args: []string{"check", "--ruleset=false", "-c", cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "--c", cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "-c=" + cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "-config", cfg}, wantOut: cfg + ": ok"},
		{args: []string{"check", "-c", cfg, "extra"}, wantStatus: 2, wantErr: `unexpected argument "extra"`},
		{args: []string{"check", "-x"}, wantStatus: 2, wantErr: "sesame check: unknown option -x"},
		{args: []string{"check", "-c"}, wantStatus: 2, wantErr: "option -c needs a value"},
		{args: []string{"grant", "ssh", "-c", cfg, "192.0.2.0/24"}, wantStatus: 2, wantErr: "not a prefix"},
		{args: []string{"grant", "--for=bad", "-c", cfg, "ssh", "192.0.2.1"}, wantStatus: 2, wantErr: `bad --for "bad"`},
		{args: []string{"revoke", "-c", cfg, "--", "ssh"}, wantStatus: 2, wantErr: "want DOOR ADDR, got 1 argument(s)"},
		{args: []string{"convert", knockd, "--key-dir", dir}, wantStatus: 2, wantErr: "--key-dir goes with --fwknop"},
		{args: []string{"convert", knockd, "-fwknop"}, wantStatus: 1, wantErr: "knockd.conf"},
		{args: []string{"version", "--short"}, wantOut: "sesame dev (commit unknown"},
		{args: []string{"version", "--help"}, wantOut: "usage: sesame version"},
		{args: []string{"keygen", "--force=maybe"}, wantStatus: 2, wantErr: "bad --force=maybe"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != tt.wantStatus || !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("sesame %q: exit %d, stdout %q, stderr %q; want exit %d, %q in stdout, %q in stderr",
				tt.args, code, out.String(), errb.String(), tt.wantStatus, tt.wantOut, tt.wantErr)
		}
	}
}

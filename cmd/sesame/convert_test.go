package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/policy"
)

func TestConvertMain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clean := write("clean.conf", "[options]\n UseSyslog\n[ssh]\n sequence = 7000,8000,9000\n seq_timeout = 5\n start_command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n cmd_timeout = 20\n stop_command = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n")
	warned := write("warned.conf", "[options]\n logfile = /var/log/knockd.log\n[ssh]\n sequence = 7000,8000,9000\n command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n")
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantErr    string // in stderr
		wantDoor   bool   // stdout validates and has a door
	}{
		{name: "all mapped", args: []string{clean}, wantStatus: 0, wantDoor: true},
		{name: "warnings", args: []string{warned}, wantStatus: 2, wantErr: "warned.conf:2: LogFile", wantDoor: true},
		{name: "unreadable", args: []string{filepath.Join(dir, "missing.conf")}, wantStatus: 1, wantErr: "no such file"},
		{name: "directory", args: []string{dir}, wantStatus: 1, wantErr: "is a directory"},
		{name: "binary", args: []string{write("bin.conf", "\x00\x01")}, wantStatus: 1, wantErr: "NUL"},
		{name: "two files", args: []string{clean, warned}, wantStatus: 2, wantErr: "one FILE"},
		{name: "bad option", args: []string{"-x"}, wantStatus: 2, wantErr: "unknown option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			got := run(append([]string{"convert"}, tt.args...), &out, &errb)
			if got != tt.wantStatus {
				t.Errorf("status %d, want %d; stderr:\n%s", got, tt.wantStatus, errb.String())
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tt.wantErr)
			}
			if tt.wantDoor {
				p, diags := policy.Parse("out.hcl", out.Bytes())
				if diags.HasErrors() || len(p.Doors) != 1 {
					t.Errorf("output does not validate with one door:\n%s\n%s", diags.Error(), out.String())
				}
			}
		})
	}
}

package knockd

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
)

var update = flag.Bool("update", false, "rewrite the golden .hcl and .warn files")

// TestGolden converts each testdata/*.conf (knockd's man page examples,
// Debian's default knockd.conf, tutorial variants) and compares the HCL
// and the warnings with the reviewed golden files. Every output must pass
// sesame's validation with no error.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.conf")
	if err != nil || len(files) < 8 {
		t.Fatalf("want 8 or more testdata/*.conf, got %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(f, "/etc/knockd.conf")
			var warns strings.Builder
			for _, w := range res.Warnings {
				fmt.Fprintln(&warns, w)
			}
			base := strings.TrimSuffix(file, ".conf")
			if *update {
				if err := os.WriteFile(base+".hcl", res.HCL, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(base+".warn", []byte(warns.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantHCL, err := os.ReadFile(base + ".hcl")
			if err != nil {
				t.Fatal(err)
			}
			wantWarn, err := os.ReadFile(base + ".warn")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(wantHCL), string(res.HCL)); diff != "" {
				t.Errorf("HCL mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(string(wantWarn), warns.String()); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			// A one-time sequence file lives on the knockd host: check the
			// output as it reads once that file is in place.
			checked := withOneTimeFiles(t, res.HCL)
			if _, diags := policy.Parse("converted.hcl", checked); diags.HasErrors() {
				t.Errorf("sesame check fails on the output:\n%s\n%s", diags.Error(), checked)
			}
		})
	}
}

// withOneTimeFiles points every one_time_sequences attribute of hcl at a
// file, in knockd's format, that the test creates, and state_dir (where
// their used sequences are recorded) at a directory of the test's.
func withOneTimeFiles(t *testing.T, hcl []byte) []byte {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(\s*one_time_sequences\s*=\s*)"[^"]*"`)
	if re.Match(hcl) {
		hcl = append([]byte("state_dir = \""+t.TempDir()+"\"\n"), hcl...)
	}
	return re.ReplaceAllFunc(hcl, func(m []byte) []byte {
		path := filepath.Join(t.TempDir(), "sequences")
		if err := os.WriteFile(path, []byte("# knockd one-time sequences\n4001,4002:udp,4003\n5001 5002 5003\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return re.ReplaceAll(m, []byte(`${1}"`+path+`"`))
	})
}

// TestFold checks the folded door of common patterns field by field, on
// the policy that sesame's parser reads from the output.
func TestFold(t *testing.T) {
	t.Parallel()
	tcp := func(p uint16) policy.PortProto { return policy.PortProto{Port: p, Proto: policy.TCP} }
	udp := func(p uint16) policy.PortProto { return policy.PortProto{Port: p, Proto: policy.UDP} }
	tests := []struct {
		name      string
		in        string
		want      *policy.Door // nil: no door
		wantWarns int
	}{
		{
			name: "open and close doors, -A/-D INPUT",
			in: `[o]
sequence = 1,3,2
command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[c]
sequence = 2,3,1
command = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
`,
			want: &policy.Door{Name: "o", Sequence: []policy.PortProto{tcp(1), tcp(3), tcp(2)}, SeqTimeout: knockdSeqTimeout,
				TCPFlags: policy.DefaultTCPFlags, Open: []policy.PortProto{tcp(22)}, OpenFor: unboundedOpenFor,
				CloseSequence: []policy.PortProto{tcp(2), tcp(3), tcp(1)}, HookTimeout: policy.DefaultHookTimeout},
		},
		{
			name: "close door first, -I with a position, udp",
			in: `[c]
sequence = 3:udp,2,1
command = iptables -D KNOCKD -s %IP% -p udp --dport 1194 -j ACCEPT
[o]
sequence = 1,2,3:udp
command = iptables -I KNOCKD 1 -s %IP% -p udp --dport 1194 -j ACCEPT
`,
			want: &policy.Door{Name: "o", Sequence: []policy.PortProto{tcp(1), tcp(2), udp(3)}, SeqTimeout: knockdSeqTimeout,
				TCPFlags: policy.DefaultTCPFlags, Open: []policy.PortProto{udp(1194)}, OpenFor: unboundedOpenFor,
				CloseSequence: []policy.PortProto{udp(3), tcp(2), tcp(1)}, HookTimeout: policy.DefaultHookTimeout},
		},
		{
			name: "different chains do not fold",
			in: `[o]
sequence = 1,3,2
command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[c]
sequence = 2,3,1
command = /sbin/iptables -D OTHER -s %IP% -p tcp --dport 22 -j ACCEPT
`,
			want: &policy.Door{Name: "o", Sequence: []policy.PortProto{tcp(1), tcp(3), tcp(2)}, SeqTimeout: knockdSeqTimeout,
				TCPFlags: policy.DefaultTCPFlags, Open: []policy.PortProto{tcp(22)}, OpenFor: unboundedOpenFor, HookTimeout: policy.DefaultHookTimeout},
			wantWarns: 1,
		},
		{
			name: "start and stop with cmd_timeout, nft, hook",
			in: `[d]
sequence = 1,3,2
seq_timeout = 7
tcpflags = syn
start_command = /usr/sbin/nft add rule inet filter input ip saddr %IP% tcp dport { 22, 2222 } accept; /usr/bin/logger "%IP% in"
cmd_timeout = 45
stop_command = /usr/sbin/nft delete rule inet filter input ip saddr %IP% tcp dport { 22, 2222 } accept
`,
			want: &policy.Door{Name: "d", Sequence: []policy.PortProto{tcp(1), tcp(3), tcp(2)}, SeqTimeout: 7e9,
				TCPFlags: policy.TCPFlags{Mask: policy.FlagSYN, Want: policy.FlagSYN}, Open: []policy.PortProto{tcp(22), tcp(2222)}, OpenFor: 45e9,
				OnOpen: []string{"/usr/bin/logger", "{ip} in"}, HookTimeout: policy.DefaultHookTimeout},
		},
		{
			name:      "a shell pipeline is not converted",
			in:        "[d]\nsequence = 1,2,3\ncommand = /bin/foo %IP% | /bin/bar\n",
			wantWarns: 2, // the pipeline; the door opens nothing
		},
		{
			name:      "knock port equal to the opened port: sesame rejects, door commented out",
			in:        "[d]\nsequence = 22,2,3\ncommand = iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n",
			wantWarns: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(f, "test.conf")
			if len(res.Warnings) != tt.wantWarns {
				t.Errorf("got %d warnings, want %d: %v", len(res.Warnings), tt.wantWarns, res.Warnings)
			}
			p, diags := policy.Parse("out.hcl", res.HCL)
			if diags.HasErrors() {
				t.Fatalf("output does not validate:\n%s\n%s", diags.Error(), res.HCL)
			}
			var got *policy.Door
			if len(p.Doors) > 0 {
				got = &p.Doors[0]
			}
			want := tt.want
			if want != nil { // what every converted door gets by default (issue 11)
				w := *want
				w.MaxGrants, w.Confirm, w.ConfirmWithin = policy.DefaultMaxGrants, true, min(policy.DefaultConfirm, w.OpenFor)
				want = &w
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("door mismatch (-want +got):\n%s\noutput:\n%s", diff, res.HCL)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    [][]string
		wantErr bool
	}{
		{in: `a b  c`, want: [][]string{{"a", "b", "c"}}},
		{in: `a 'b c' "d \"e\"";f && g`, want: [][]string{{"a", "b c", `d "e"`}, {"f"}, {"g"}}},
		{in: `a b\ c`, want: [][]string{{"a", "b c"}}},
		{in: `a | b`, wantErr: true},
		{in: `a > /tmp/x`, wantErr: true},
		{in: `a $HOME`, wantErr: true},
		{in: `a "$(id)"`, wantErr: true},
		{in: `a || b`, wantErr: true},
		{in: `a 'b`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitCommand(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("splitCommand(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte("# c\nstray = 1\n[ options ]\n  UseSyslog\n[d]\n  Seq_Timeout = 5 \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{Sections: []Section{
		{Entries: []Entry{{Key: "STRAY", Value: "1", Line: 2}}},
		{Name: "options", Line: 3, Entries: []Entry{{Key: "USESYSLOG", Line: 4}}},
		{Name: "d", Line: 5, Entries: []Entry{{Key: "SEQ_TIMEOUT", Value: "5", Line: 6}}},
	}}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if _, err := Parse([]byte("a\x00b")); err == nil {
		t.Error("Parse of binary content: want an error")
	}
}

// FuzzConvert: any input converts without panicking into a config that
// sesame's parser accepts, or that it rejects only for a missing
// one_time_sequences file, which a warning reports; every door section is
// accounted for (checkAccounted).
func FuzzConvert(f *testing.F) {
	for _, name := range []string{"debian", "chain", "nft", "startstop", "manpage1", "manpage2", "manpage3", "manpage4"} {
		src, err := os.ReadFile("testdata/" + name + ".conf")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse(src)
		if err != nil {
			return
		}
		res := Convert(file, "fuzz.conf")
		p, diags := policy.Parse("out.hcl", res.HCL)
		if diags.HasErrors() {
			p = checkOnlyOneTime(t, res, diags)
		}
		checkAccounted(t, file, res, p)
	})
}

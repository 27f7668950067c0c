package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-knock/sesame/internal/nstest"
)

// TestStartupErrors: `sesame run` refuses to start with a clear message and
// exit status 1 when it cannot serve, and leaves no table behind.
func TestStartupErrors(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()
	const good = `interfaces = ["lo"]
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  open     = ["22/tcp"]
}
`
	// setpriv drops root for the capability cases: nobody, with only the
	// listed capabilities.
	asNobody := func(caps string) []string {
		return []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all" + caps, "--ambient-caps=-all" + caps, "--bounding-set=-all" + caps}
	}
	tests := []struct {
		name    string
		config  string
		prefix  []string         // command before the binary
		prepare func(*nstest.NS) // runs in the namespace first
		want    string
	}{
		{name: "missing interface", config: strings.Replace(good, `"lo"`, `"nope0"`, 1),
			want: `interface "nope0"`},
		{name: "missing config", config: "", want: "Cannot read config file"},
		{name: "invalid config", config: good + "bogus = 1\n", want: "Unsupported argument"},
		{name: "table taken", config: good, want: "was not created by sesame",
			prepare: func(ns *nstest.NS) {
				nsExec(t, ns, "nft", "add table inet sesame; add chain inet sesame foreign")
			}},
		{name: "no CAP_NET_ADMIN", config: good, prefix: asNobody(""), want: "CAP_NET_ADMIN"},
		{name: "no CAP_NET_RAW", config: good, prefix: asNobody(",+net_admin"), want: "CAP_NET_RAW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := nstest.New(t, "start")
			path := filepath.Join(t.TempDir(), "sesame.hcl")
			if tt.config != "" {
				if err := os.WriteFile(path, []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// nobody must be able to read the config and run the binary.
			if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(ns)
			}
			args := append(append([]string{}, tt.prefix...), SesameBin, "run", "-c", path)
			out, err := ns.Try(args[0], args[1:]...)
			if err == nil {
				t.Fatalf("sesame run started; want a refusal mentioning %q:\n%s", tt.want, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("panicked:\n%s", out)
			}
			if tt.prepare == nil {
				if tables, _ := ns.Try("nft", "list", "tables"); strings.Contains(tables, "sesame") {
					t.Errorf("a failed start left a table behind: %s", tables)
				}
			}
		})
	}
}

func nsExec(t *testing.T, ns *nstest.NS, name string, args ...string) {
	t.Helper()
	ns.Exec(t, name, args...)
}

package fwknop

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

// TestConvert converts testdata/access.conf, writes its key files, and
// checks that sesame's own validator accepts the result with the right
// doors, clients and keys, and that every unmapped item is reported.
func TestConvert(t *testing.T) {
	src, err := os.ReadFile("testdata/access.conf")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := Convert(st, "access.conf", dir)
	for _, kf := range res.KeyFiles {
		if err := os.WriteFile(kf.Path, []byte(kf.Content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, diags := policy.Parse(filepath.Join(dir, "sesame.hcl"), res.HCL)
	if diags.HasErrors() {
		t.Fatalf("converted config does not validate:\n%s\n%s", diags.Error(), res.HCL)
	}
	type door struct {
		Name, Open string
		Port       uint16
		OpenFor    string
		MaxOpenFor string
		Clients    []string
	}
	var got []door
	for _, d := range p.Doors {
		dd := door{Name: d.Name, Open: policy.FormatPorts(d.Open), Port: d.SPA.Port, OpenFor: d.OpenFor.String(), MaxOpenFor: d.SPA.MaxOpenFor.String()}
		for _, c := range d.Clients {
			dd.Clients = append(dd.Clients, c.Name+"/"+c.Keys.Digest.String())
		}
		got = append(got, dd)
	}
	want := []door{
		{Name: "fwknop", Open: "22/tcp", Port: 62201, OpenFor: "30s", MaxOpenFor: "5m0s", Clients: []string{"stanza1/sha256", "stanza2/sha1"}},
		{Name: "fwknop2", Open: "443/tcp,53/udp", Port: 62202, OpenFor: "30s", MaxOpenFor: "5m0s", Clients: []string{"stanza3/sha512"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("doors (-want +got):\n%s\n%s", diff, res.HCL)
	}
	if k := p.Doors[0].Clients[1].Keys; string(k.Enc) != "fwknoptest" || string(k.HMAC) != "hmackeytest" {
		t.Errorf("raw KEY/HMAC_KEY not kept: %+v", k)
	}
	// The keys work: vector t3 (made by the real client with the raw keys
	// fwknoptest / hmackeytest, sha1) verifies with stanza 2's keys.
	vectors, err := os.ReadFile("../../spa/testdata/fwknop-spa-vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(vectors), "\n") {
		f := strings.Split(l, "|")
		if len(f) < 7 || f[0] != "t3" {
			continue
		}
		ts, _ := strconv.ParseInt(strings.Split(f[6], ":")[2], 10, 64)
		v, err := spa.NewVerifier(p.Doors[0].Clients[1].Keys, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify([]byte(f[5]), time.Unix(ts, 0)); err != nil {
			t.Errorf("vector t3 with the converted keys: %v", err)
		}
	}
	var lines []string
	for _, w := range res.Warnings {
		lines = append(lines, w.Msg)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"SOURCE 192.0.2.0/24", "REQUIRE_SOURCE_ADDRESS Y", `"icmp/0"`, "ENABLE_CMD_EXEC", "GPG_HOME_DIR", "no HMAC_KEY"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(string(res.HCL), "Ft0wgCj") {
		t.Error("a key leaked into the HCL")
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse([]byte("OPEN_PORTS tcp/22\nSOURCE ANY\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Parse before SOURCE = %v, want an error naming line 1", err)
	}
}

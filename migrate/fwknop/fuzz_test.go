package fwknop

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sesame-knock/sesame/migrate"
	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/spa"
)

// FuzzConvert: no access.conf panics Parse or Convert, and what Convert
// writes (the HCL and its key files) is what `sesame convert --fwknop`
// promises: sesame accepts it when it has a client, and otherwise a
// warning says why; every stanza becomes a client or gets a warning from
// its own lines; each client's keys reach sesame intact through its key
// file and never appear in the HCL; a second conversion is identical.
func FuzzConvert(f *testing.F) {
	src, err := os.ReadFile("testdata/access.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(src)
	f.Add([]byte(""))
	f.Add([]byte("SOURCE ANY\nOPEN_PORTS tcp/22, udp/53\nKEY fwknoptest\nHMAC_KEY hmackeytest\nHMAC_DIGEST_TYPE SHA512\nFW_ACCESS_TIMEOUT 90\n"))
	f.Add([]byte("SOURCE: ANY\nOPEN_PORTS: tcp/22\nKEY_BASE64: Zndrbm9wdGVzdA==\nHMAC_KEY_BASE64: aG1hY2tleXRlc3Q=\nMAX_FW_TIMEOUT 10\nFW_ACCESS_TIMEOUT 60\n" +
		"SOURCE 192.0.2.0/24\nOPEN_PORTS tcp/443\nKEY k\nHMAC_KEY h\nUSE_HMAC N\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		stanzas, err := Parse(src)
		if err != nil {
			return
		}
		res := Convert(stanzas, "access.conf", dir)
		for _, kf := range res.KeyFiles {
			if err := os.WriteFile(kf.Path, []byte(kf.Content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		p, diags := policy.Parse(dir+"/sesame.hcl", res.HCL)
		clients := map[string]policy.Client{}
		if p != nil && !diags.HasErrors() {
			for _, d := range p.Doors {
				for _, c := range d.Clients {
					clients[c.Name] = c
				}
			}
		}
		switch {
		case diags.HasErrors() && len(res.KeyFiles) > 0:
			t.Fatalf("output with %d clients does not validate:\n%s\n%s", len(res.KeyFiles), diags.Error(), res.HCL)
		case diags.HasErrors() && len(res.Warnings) == 0:
			t.Fatalf("output does not validate, and no warning says so:\n%s\n%s", diags.Error(), res.HCL)
		case len(clients) != len(res.KeyFiles):
			t.Fatalf("%d key files, %d clients in the output:\n%s", len(res.KeyFiles), len(clients), res.HCL)
		}
		for i, s := range stanzas {
			name := fmt.Sprintf("stanza%d", i+1)
			c, ok := clients[name]
			if !ok {
				end := int(^uint(0) >> 1)
				if i+1 < len(stanzas) {
					end = stanzas[i+1].Line
				}
				if !slices.ContainsFunc(res.Warnings, func(w migrate.Warning) bool { return w.Line >= s.Line && w.Line < end }) {
					t.Fatalf("stanza at line %d is neither converted nor warned about; warnings %v", s.Line, res.Warnings)
				}
				continue
			}
			want := stanzaKeys(s)
			if !bytes.Equal(c.Keys.Enc, want.Enc) || !bytes.Equal(c.Keys.HMAC, want.HMAC) || c.Keys.Digest != want.Digest {
				t.Fatalf("%s: sesame reads keys %+v from its key file, the stanza has %+v", name, c.Keys, want)
			}
			for _, k := range [][]byte{want.Enc, want.HMAC} {
				if b64 := base64.StdEncoding.EncodeToString(k); len(b64) >= 16 && strings.Contains(string(res.HCL), b64) {
					t.Fatalf("%s: a key leaked into the HCL:\n%s", name, res.HCL)
				}
			}
		}
		again := Convert(stanzas, "access.conf", dir)
		if !cmp.Equal(res, again) {
			t.Fatalf("a second conversion differs:\n%s", cmp.Diff(res, again))
		}
	})
}

// stanzaKeys re-reads a stanza's keys as fwknopd does: the last KEY or
// KEY_BASE64 line, the last HMAC_KEY or HMAC_KEY_BASE64 line, the last
// HMAC_DIGEST_TYPE (SHA-256 by default).
func stanzaKeys(s Stanza) spa.Keys {
	k := spa.Keys{Digest: spa.SHA256}
	for _, e := range s.Entries {
		var err error
		switch e.Key {
		case "KEY":
			k.Enc = []byte(e.Value)
		case "HMAC_KEY":
			k.HMAC = []byte(e.Value)
		case "KEY_BASE64":
			k.Enc, err = base64.StdEncoding.DecodeString(e.Value)
		case "HMAC_KEY_BASE64":
			k.HMAC, err = base64.StdEncoding.DecodeString(e.Value)
		case "HMAC_DIGEST_TYPE":
			k.Digest, err = spa.ParseDigest(e.Value)
		}
		if err != nil {
			return spa.Keys{} // Convert refuses the stanza
		}
	}
	return k
}

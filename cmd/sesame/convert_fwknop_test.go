package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertFwknop(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "access.conf")
	conf := "SOURCE ANY\nOPEN_PORTS tcp/22\nKEY_BASE64 Ft0wgCjNNcObmwH1XFLF7v59oaEfmyp1NqfEqNE1uRM=\nHMAC_KEY_BASE64 c2VjcmV0aG1hYw==\n"
	if err := os.WriteFile(clean, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if st := run([]string{"convert", "--fwknop", clean, "--key-dir", keys}, &out, &errb); st != 0 {
		t.Fatalf("status %d, want 0; stderr:\n%s", st, errb.String())
	}
	kf := filepath.Join(keys, "fwknop-stanza1.spa")
	if fi, err := os.Stat(kf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v, want mode 0600", kf, err, fi)
	}
	if !strings.Contains(out.String(), `key_file    = "`+kf+`"`) {
		t.Errorf("output does not refer to %s:\n%s", kf, out.String())
	}
	for _, s := range []string{out.String(), errb.String()} {
		if strings.Contains(s, "Ft0wgCj") || strings.Contains(s, "c2VjcmV0aG1hYw") {
			t.Errorf("a key was printed:\n%s", s)
		}
	}
	// Again: existing key files are never overwritten.
	out.Reset()
	errb.Reset()
	if st := run([]string{"convert", "--fwknop", clean, "--key-dir", keys}, &out, &errb); st != 1 || !strings.Contains(errb.String(), "exists") {
		t.Errorf("second run: status %d, stderr %q; want 1 and the file named as existing", st, errb.String())
	}
	// Without --key-dir: nothing written, status 2.
	out.Reset()
	errb.Reset()
	if st := run([]string{"convert", "--fwknop", clean}, &out, &errb); st != 2 || !strings.Contains(errb.String(), "--key-dir") {
		t.Errorf("without --key-dir: status %d, stderr %q; want 2 and a hint", st, errb.String())
	}
	if st := run([]string{"convert", "--fwknop", filepath.Join(dir, "nope")}, &out, &errb); st != 1 {
		t.Errorf("missing file: status %d, want 1", st)
	}
}

package fleet

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestExamples: docs/fleet/sesame.hcl and members.hcl, with their
// /etc/sesame paths moved to a directory that holds the files they name
// and bastion-1's key made here, load without a diagnostic.
func TestExamples(t *testing.T) {
	t.Parallel()
	cfg, err := os.ReadFile("../docs/fleet/sesame.hcl")
	if err != nil {
		t.Fatal(err)
	}
	members, err := os.ReadFile("../docs/fleet/members.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "fleet"), 0o700); err != nil {
		t.Fatal(err)
	}
	priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// bastion-1's key in the example is replaced by this test's.
	re := regexp.MustCompile(`(member "bastion-1" \{\n  key       = ")[^"]+`)
	if !re.Match(members) {
		t.Fatal("members.hcl has no bastion-1 key")
	}
	members = re.ReplaceAll(members, []byte("${1}"+FormatKey(priv.Public().(ed25519.PublicKey))))
	spaKey, err := os.ReadFile("../policy/testdata/secrets/alice.spa")
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]struct {
		content []byte
		mode    os.FileMode
	}{
		"fleet/bastion-1.key":   {[]byte(FormatPrivateKey(priv)), 0o600},
		"fleet/members.hcl":     {members, 0o644},
		"fleet/bastion-1.creds": {[]byte("-----BEGIN NATS USER JWT-----\n"), 0o600},
		"fleet/ca.pem":          {selfSigned(t), 0o644},
		"alice.spa":             {spaKey, 0o600},
		"alice.totp":            {[]byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n"), 0o600},
		"sesame.hcl":            {[]byte(strings.ReplaceAll(string(cfg), "/etc/sesame/", dir+"/")), 0o644},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), f.content, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	p, c, diags := Load(filepath.Join(dir, "sesame.hcl"))
	if len(diags.All()) != 0 || c == nil {
		t.Fatalf("want no diagnostics, got:\n%s", diags.Error())
	}
	if c.Members.Len() != 3 || c.Member != "bastion-1" || len(c.Servers) != 3 {
		t.Errorf("%d members, member %q, %d servers; want 3, bastion-1, 3", c.Members.Len(), c.Member, len(c.Servers))
	}
	if diff := cmp.Diff(map[string][]string{"ssh": {"web"}, "admin": {"web"}}, c.Publish); diff != "" {
		t.Errorf("Publish mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(p.Summary(), "fleet:      prod, member bastion-1, groups web,") {
		t.Errorf("Summary():\n%s", p.Summary())
	}
}

// selfSigned returns a PEM certificate.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(0, 0).Add(100 * 365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

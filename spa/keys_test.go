package spa

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	enc := bytes.Repeat([]byte{1}, 32)
	mac := bytes.Repeat([]byte{2}, 64)
	e64, m64 := base64.StdEncoding.EncodeToString(enc), base64.StdEncoding.EncodeToString(mac)
	tests := []struct {
		name    string
		in      string
		want    Keys
		wantErr string
	}{
		{name: "key-gen output", in: "KEY_BASE64: " + e64 + "\nHMAC_KEY_BASE64: " + m64 + "\n",
			want: Keys{enc, mac, SHA256}},
		{name: "fwknoprc layout", in: "# alice\n\nKEY_BASE64          " + e64 + "\nHMAC_KEY_BASE64\t" + m64 + "\nHMAC_DIGEST_TYPE    SHA512\n",
			want: Keys{enc, mac, SHA512}},
		{name: "raw keys", in: "KEY: fwknoptest\nHMAC_KEY: hmac key with spaces\nHMAC_DIGEST_TYPE: sha3_256",
			want: Keys{[]byte("fwknoptest"), []byte("hmac key with spaces"), SHA3_256}},
		{name: "access.conf raw", in: "KEY                 fwknoptest\nHMAC_KEY            hmackeytest\n",
			want: Keys{[]byte("fwknoptest"), []byte("hmackeytest"), SHA256}},
		{name: "no HMAC", in: "KEY_BASE64: " + e64, wantErr: "HMAC is mandatory"},
		{name: "no key", in: "HMAC_KEY_BASE64: " + m64, wantErr: "no encryption key"},
		{name: "empty", in: "", wantErr: "no encryption key"},
		{name: "bad base64", in: "KEY_BASE64: !!!\nHMAC_KEY_BASE64: " + m64, wantErr: "line 1: KEY_BASE64: illegal base64"},
		{name: "unknown", in: "KEY_BASE64: " + e64 + "\nSPA_SERVER: x\n", wantErr: `line 2: unknown setting "SPA_SERVER"`},
		{name: "duplicate", in: "KEY: a\nKEY: b\nHMAC_KEY: c", wantErr: "line 2: KEY already set on line 1"},
		{name: "both forms", in: "KEY: a\nKEY_BASE64: " + e64 + "\nHMAC_KEY: c", wantErr: "both KEY and KEY_BASE64"},
		{name: "no value", in: "KEY:\nHMAC_KEY: c", wantErr: "line 1: KEY has no value"},
		{name: "bad digest", in: "KEY: a\nHMAC_KEY: c\nHMAC_DIGEST_TYPE: sha224", wantErr: "unknown digest"},
		{name: "long key", in: "KEY: " + strings.Repeat("k", 33) + "\nHMAC_KEY: c", wantErr: "at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestGenerateKeysRoundTrip(t *testing.T) {
	t.Parallel()
	k, err := GenerateKeys(testRand(42))
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Enc) != 32 || len(k.HMAC) != 64 || k.Digest != SHA256 {
		t.Fatalf("keys %d/%d bytes, %v", len(k.Enc), len(k.HMAC), k.Digest)
	}
	path := filepath.Join(t.TempDir(), "alice.spa")
	if err := os.WriteFile(path, []byte(k.KeyFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(k, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	k.Digest = SHA3_512
	if got, _ := ParseKeys([]byte(k.KeyFile())); got.Digest != SHA3_512 {
		t.Errorf("digest %v after a round trip, want sha3_512", got.Digest)
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := GenerateKeys(bytes.NewReader(make([]byte, 40))); err == nil {
		t.Error("short randomness: no error")
	}
}

func TestFwknopRC(t *testing.T) {
	t.Parallel()
	k := Keys{Enc: []byte("0123456789abcdef0123456789abcdef"), HMAC: []byte("h"), Digest: SHA512}
	got := k.FwknopRC("door", "203.0.113.1", 62202, []Access{{"tcp", 22}, {"udp", 53}})
	want := `[door]
SPA_SERVER          203.0.113.1
SPA_SERVER_PORT     62202
ACCESS              tcp/22,udp/53
ALLOW_IP            source
KEY_BASE64          MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
HMAC_KEY_BASE64     aA==
HMAC_DIGEST_TYPE    sha512
USE_HMAC            Y
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if strings.Contains(k.FwknopRC("d", "h", DefaultPort, nil), "SPA_SERVER_PORT") {
		t.Error("default port written")
	}
}

func TestParseDigest(t *testing.T) {
	t.Parallel()
	for i, n := range DigestNames {
		d, err := ParseDigest(strings.ToUpper(n))
		if err != nil || d != Digest(i+1) || d.String() != n {
			t.Errorf("%s: %v %v", n, d, err)
		}
		if d.New().Size() != d.Size() {
			t.Errorf("%s: size %d vs %d", n, d.New().Size(), d.Size())
		}
	}
	if _, err := ParseDigest("sha224"); err == nil {
		t.Error("sha224 accepted")
	}
	want := map[Digest]int{MD5: 22, SHA1: 27, SHA256: 43, SHA384: 64, SHA512: 86, SHA3_256: 43, SHA3_512: 86}
	for d, n := range want {
		if d.EncodedLen() != n {
			t.Errorf("%v: encoded length %d, want %d", d, d.EncodedLen(), n)
		}
	}
}

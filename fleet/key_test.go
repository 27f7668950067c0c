package fleet

import (
	"crypto/rand"
	"strings"
	"testing"
)

func TestPrivateKeyFile(t *testing.T) {
	t.Parallel()
	priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := FormatPrivateKey(priv)
	if !strings.HasPrefix(file, PrivateKeyPrefix) || strings.Count(file, "\n") != 1 || !strings.HasSuffix(file, "\n") {
		t.Fatalf("FormatPrivateKey = %q, want one line starting with %q", file, PrivateKeyPrefix)
	}
	for _, in := range []string{file, strings.TrimSuffix(file, "\n"), strings.TrimSuffix(file, "\n") + "\r\n"} {
		got, err := ParsePrivateKey([]byte(in))
		if err != nil || !got.Equal(priv) {
			t.Errorf("ParsePrivateKey(%q) = %v; want the key back", in, err)
		}
	}
	seed := strings.TrimSuffix(strings.TrimPrefix(file, PrivateKeyPrefix), "\n")
	for name, in := range map[string]string{
		"empty":      "",
		"public key": "ed25519:" + seed + "\n",
		"no prefix":  seed + "\n",
		"two lines":  file + file,
		"not base64": PrivateKeyPrefix + "!!!!\n",
		"too long":   PrivateKeyPrefix + seed[:len(seed)-1] + "AAAAA=\n",
		"short":      PrivateKeyPrefix + "AAAA\n",
	} {
		_, err := ParsePrivateKey([]byte(in))
		if err == nil {
			t.Errorf("%s: ParsePrivateKey(%q) accepted", name, in)
			continue
		}
		if strings.Contains(err.Error(), seed[:8]) {
			t.Errorf("%s: error %q quotes the key", name, err)
		}
	}
}

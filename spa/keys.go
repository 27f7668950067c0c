package spa

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Key sizes: what fwknop accepts, and what `fwknop --key-gen` makes.
const (
	MaxEncKeyLen  = 32  // Rijndael passphrase, raw or decoded
	MaxHMACKeyLen = 128 // HMAC key, raw or decoded
	GenEncKeyLen  = 32
	GenHMACKeyLen = 64
)

// Keys are one client's secrets: the encryption passphrase, the HMAC key
// and the HMAC digest type (not on the wire; must match the client's).
type Keys struct {
	Enc    []byte // 1–32 bytes
	HMAC   []byte // 1–128 bytes; mandatory
	Digest Digest // default SHA256
}

// Validate reports what is wrong with k.
func (k Keys) Validate() error {
	switch {
	case len(k.Enc) == 0:
		return errors.New("no encryption key (KEY_BASE64 or KEY)")
	case len(k.Enc) > MaxEncKeyLen:
		return fmt.Errorf("encryption key is %d bytes; at most %d", len(k.Enc), MaxEncKeyLen)
	case len(k.HMAC) == 0:
		return errors.New("no HMAC key (HMAC_KEY_BASE64 or HMAC_KEY): HMAC is mandatory")
	case len(k.HMAC) > MaxHMACKeyLen:
		return fmt.Errorf("HMAC key is %d bytes; at most %d", len(k.HMAC), MaxHMACKeyLen)
	case !k.Digest.valid():
		return fmt.Errorf("invalid HMAC digest %v; allowed: %s", k.Digest, strings.Join(DigestNames, " "))
	}
	return nil
}

// GenerateKeys makes keys as `fwknop --key-gen` does: a 32-byte
// encryption key and a 64-byte HMAC key, with SHA-256.
func GenerateKeys(rand io.Reader) (Keys, error) {
	k := Keys{Enc: make([]byte, GenEncKeyLen), HMAC: make([]byte, GenHMACKeyLen), Digest: SHA256}
	if _, err := io.ReadFull(rand, k.Enc); err != nil {
		return Keys{}, fmt.Errorf("read random: %w", err)
	}
	if _, err := io.ReadFull(rand, k.HMAC); err != nil {
		return Keys{}, fmt.Errorf("read random: %w", err)
	}
	return k, nil
}

// KeyFile renders k in `fwknop --key-gen` format (plus the digest type
// when it is not the default), as ParseKeys reads it back.
func (k Keys) KeyFile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "KEY_BASE64: %s\n", base64.StdEncoding.EncodeToString(k.Enc))
	fmt.Fprintf(&b, "HMAC_KEY_BASE64: %s\n", base64.StdEncoding.EncodeToString(k.HMAC))
	if k.Digest != SHA256 && k.Digest.valid() {
		fmt.Fprintf(&b, "HMAC_DIGEST_TYPE: %s\n", k.Digest)
	}
	return b.String()
}

// FwknopRC renders a ~/.fwknoprc stanza for the real fwknop client:
// `fwknop -n STANZA` then sends a packet that sesame accepts. The client
// asks for the packet's source address (ALLOW_IP source).
func (k Keys) FwknopRC(stanza, server string, port uint16, access []Access) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", stanza)
	row := func(k, v string) { fmt.Fprintf(&b, "%-20s%s\n", k, v) }
	row("SPA_SERVER", server)
	if port != 0 && port != DefaultPort {
		row("SPA_SERVER_PORT", strconv.Itoa(int(port)))
	}
	var acc []string
	for _, a := range access {
		acc = append(acc, a.String())
	}
	row("ACCESS", strings.Join(acc, ","))
	row("ALLOW_IP", "source")
	row("KEY_BASE64", base64.StdEncoding.EncodeToString(k.Enc))
	row("HMAC_KEY_BASE64", base64.StdEncoding.EncodeToString(k.HMAC))
	d := k.Digest
	if !d.valid() {
		d = SHA256
	}
	row("HMAC_DIGEST_TYPE", d.String())
	row("USE_HMAC", "Y")
	return b.String()
}

// DefaultPort is fwknop's UDP port.
const DefaultPort = 62201

// LoadKeys reads a key file; see ParseKeys.
func LoadKeys(path string) (Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Keys{}, fmt.Errorf("read key file: %w", err)
	}
	k, err := ParseKeys(b)
	if err != nil {
		return Keys{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseKeys reads `fwknop --key-gen` output ("KEY_BASE64: ..." and
// "HMAC_KEY_BASE64: ..."), or the same names as ~/.fwknoprc and
// access.conf write them ("KEY_BASE64  ..."), plus raw "KEY" and
// "HMAC_KEY" passphrases (the rest of the line) and "HMAC_DIGEST_TYPE"
// (default sha256). Blank lines and '#' comments are skipped; anything
// else is an error naming its line.
func ParseKeys(data []byte) (Keys, error) {
	var k Keys
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, val := splitKeyLine(line)
		if prev, dup := seen[name]; dup {
			return Keys{}, fmt.Errorf("line %d: %s already set on line %d", n, name, prev)
		}
		seen[name] = n
		if val == "" {
			return Keys{}, fmt.Errorf("line %d: %s has no value", n, name)
		}
		var err error
		switch name {
		case "KEY":
			k.Enc = []byte(val)
		case "KEY_BASE64":
			k.Enc, err = base64.StdEncoding.DecodeString(val)
		case "HMAC_KEY":
			k.HMAC = []byte(val)
		case "HMAC_KEY_BASE64":
			k.HMAC, err = base64.StdEncoding.DecodeString(val)
		case "HMAC_DIGEST_TYPE":
			k.Digest, err = ParseDigest(val)
		default:
			return Keys{}, fmt.Errorf("line %d: unknown setting %q; allowed: KEY_BASE64, HMAC_KEY_BASE64, KEY, HMAC_KEY, HMAC_DIGEST_TYPE", n, name)
		}
		if err != nil {
			return Keys{}, fmt.Errorf("line %d: %s: %w", n, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Keys{}, err
	}
	if seen["KEY"] != 0 && seen["KEY_BASE64"] != 0 {
		return Keys{}, errors.New("both KEY and KEY_BASE64 set; keep one")
	}
	if seen["HMAC_KEY"] != 0 && seen["HMAC_KEY_BASE64"] != 0 {
		return Keys{}, errors.New("both HMAC_KEY and HMAC_KEY_BASE64 set; keep one")
	}
	if k.Digest == 0 {
		k.Digest = SHA256
	}
	if err := k.Validate(); err != nil {
		return Keys{}, err
	}
	return k, nil
}

// splitKeyLine splits "NAME: value" or "NAME value".
func splitKeyLine(line string) (name, val string) {
	i := strings.IndexAny(line, ": \t")
	if i < 0 {
		return line, ""
	}
	name, rest := line[:i], strings.TrimSpace(line[i:])
	if strings.HasPrefix(rest, ":") {
		rest = strings.TrimSpace(rest[1:])
	}
	return name, rest
}

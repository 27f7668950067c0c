package spa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"fmt"
	"io"
)

const (
	saltedMagic = "Salted__"   // OpenSSL's salted header
	b64Salted   = "U2FsdGVkX1" // its first 10 base64 characters, stripped on the wire
	gpgPrefix   = "hQ"         // fwknop GPG mode
)

// evpBytesToKey derives AES-256 key and IV as OpenSSL's EVP_BytesToKey
// with MD5 and one iteration.
func evpBytesToKey(pass, salt []byte) (key, iv []byte) {
	var out, d []byte
	for len(out) < 48 {
		h := md5.New()
		h.Write(d)
		h.Write(pass)
		h.Write(salt)
		d = h.Sum(nil)
		out = append(out, d...)
	}
	return out[:32], out[32:48]
}

// macText computes the wire's HMAC (base64, no '=') over "U2FsdGVkX1"+ct.
func macText(k Keys, ct []byte) []byte {
	m := hmac.New(k.Digest.New, k.HMAC)
	m.Write([]byte(b64Salted))
	m.Write(ct)
	var sum [64]byte
	raw := m.Sum(sum[:0])
	out := make([]byte, b64.EncodedLen(len(raw)))
	b64.Encode(out, raw)
	return out
}

// checkMAC compares the wire's HMAC in constant time.
func checkMAC(k Keys, ct, mac []byte) bool {
	return subtle.ConstantTimeCompare(macText(k, ct), mac) == 1
}

// seal encrypts a plaintext and returns the wire string (B64CT ‖ B64HMAC).
func seal(k Keys, pt []byte, rand io.Reader) (string, error) {
	salt := make([]byte, 8)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	key, iv := evpBytesToKey(k.Enc, salt)
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(pt)%aes.BlockSize
	buf := append(append([]byte{}, pt...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	raw := append(append([]byte(saltedMagic), salt...), buf...)
	ct := []byte(b64.EncodeToString(raw)[len(b64Salted):])
	return string(ct) + string(macText(k, ct)), nil
}

// open decrypts B64CT (prefix stripped, HMAC already checked).
func open(k Keys, ct []byte) ([]byte, error) {
	full := make([]byte, 0, len(b64Salted)+len(ct))
	full = append(append(full, b64Salted...), ct...)
	raw := make([]byte, b64.DecodedLen(len(full)))
	n, err := b64.Decode(raw, full)
	if err != nil {
		return nil, refuse(ReasonBadEncoding, "ciphertext is not base64")
	}
	raw = raw[:n]
	if len(raw) < 16+aes.BlockSize || !bytes.HasPrefix(raw, []byte(saltedMagic)) {
		return nil, refuse(ReasonDecrypt, "no salted header or no ciphertext")
	}
	salt, body := raw[8:16], raw[16:]
	if len(body)%aes.BlockSize != 0 {
		return nil, refuse(ReasonDecrypt, "ciphertext of %d bytes is not whole AES blocks", len(body))
	}
	key, iv := evpBytesToKey(k.Enc, salt)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, refuse(ReasonDecrypt, "%v", err)
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(body, body)
	return unpad(body), nil
}

// unpad strips PKCS#7 padding leniently: only when the last v (1–16)
// bytes all equal v; otherwise the data is returned as is.
func unpad(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	v := int(b[len(b)-1])
	if v == 0 || v > aes.BlockSize || v > len(b) {
		return b
	}
	for _, c := range b[len(b)-v:] {
		if int(c) != v {
			return b
		}
	}
	return b[:len(b)-v]
}

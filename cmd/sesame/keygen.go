package main

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/totp"
)

const keygenUsage = `usage: sesame keygen [-o FILE] [--force]
       sesame keygen --spa [-o FILE] [--force] [--server HOST]
Writes a new random 160-bit TOTP secret, base32 on one line, to FILE (mode
0600; an existing FILE is refused unless --force) or to standard output.
With --spa, writes SPA keys in fwknop --key-gen format (KEY_BASE64,
HMAC_KEY_BASE64) instead and prints a ~/.fwknoprc stanza for the fwknop
client (server HOST, default server.example.com) on standard output.
`

// keygenCmd runs `sesame keygen`.
func keygenCmd(args []string, stdout, _ io.Writer) error {
	fs := newFlags("keygen", "")
	fs.text = keygenUsage
	out := fs.StringP("out", "o", "", "write the secret to `FILE` (mode 0600)")
	force := fs.boolFlag("force", "overwrite FILE")
	spaKeys := fs.boolFlag("spa", "write SPA keys (fwknop format)")
	server := fs.String("server", "", "the server's name in the ~/.fwknoprc stanza (--spa)")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	if *spaKeys {
		return keygenSPA(*out, *force, *server, stdout) // knock_spa.go
	}
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	line := totp.EncodeSecret(secret) + "\n"
	if *out == "" {
		fmt.Fprint(stdout, line)
		return nil
	}
	return secretfile.Write(*out, line, *force)
}

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/policy"

	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/totp"
)

const keygenUsage = `usage: sesame keygen [-o FILE] [--force]
       sesame keygen --spa [-o FILE] [--force] [--server HOST]
       sesame keygen --fleet -o FILE [--force] [--member NAME]
Writes a new random 160-bit TOTP secret, base32 on one line, to FILE (mode
0600; an existing FILE is refused unless --force) or to standard output.
With --spa, writes SPA keys in fwknop --key-gen format (KEY_BASE64,
HMAC_KEY_BASE64) instead and prints a ~/.fwknoprc stanza for the fwknop
client (server HOST, default server.example.com) on standard output.
With --fleet, writes a fleet member's Ed25519 private key to FILE (never
to standard output) and prints the member's members.hcl stanza (member
NAME, default FILE's name without its extension).
`

// keygenCmd runs `sesame keygen`.
func keygenCmd(args []string, stdout, _ io.Writer) error {
	fs := newFlags("keygen", "")
	fs.text = keygenUsage
	out := fs.StringP("out", "o", "", "write the secret to `FILE` (mode 0600)")
	force := fs.boolFlag("force", "overwrite FILE")
	spaKeys := fs.boolFlag("spa", "write SPA keys (fwknop format)")
	server := fs.String("server", "", "the server's name in the ~/.fwknoprc stanza (--spa)")
	fleetKey := fs.boolFlag("fleet", "write a fleet member's Ed25519 private key")
	member := fs.String("member", "", "the member's name in the members.hcl stanza (--fleet)")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	switch {
	case *fleetKey && *spaKeys:
		return fs.usageErr("--fleet and --spa write different keys: give one")
	case *fleetKey && *server != "":
		return fs.usageErr("--server belongs to --spa")
	case !*fleetKey && *member != "":
		return fs.usageErr("--member belongs to --fleet")
	case *fleetKey:
		return keygenFleet(fs, *out, *force, *member, stdout)
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

// keygenFleet writes a new fleet private key to out (mode 0600) and
// prints the member's stanza for members.hcl. A private key never goes to
// standard output: it would end up in a terminal's scrollback or a log.
func keygenFleet(fs *flags, out string, force bool, member string, stdout io.Writer) error {
	if out == "" || out == "-" {
		return fs.usageErr("--fleet writes a private key to a file only: give -o FILE (e.g. -o /etc/sesame/fleet/NAME.key)")
	}
	if member == "" {
		member = strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
		if !policy.ValidFleetName(member) {
			return fs.usageErr("%q is not a member name: give --member NAME (%s)", member, policy.AllowFleetName)
		}
	} else if !policy.ValidFleetName(member) {
		return fs.usageErr("--member %q: a member name is %s", member, policy.AllowFleetName)
	}
	priv, err := fleet.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := secretfile.Write(out, fleet.FormatPrivateKey(priv), force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `# Wrote %s (mode 0600): name it in the fleet block (key = %q, member = %q).
# Add this stanza to members.hcl on every host, with the doors this member
# may open in each group, e.g. may_grant = { web = ["ssh"] }:
member %q {
  key       = %q
  may_grant = { }
}
`, out, out, member, member, fleet.FormatKey(priv.Public().(ed25519.PublicKey)))
	return nil
}

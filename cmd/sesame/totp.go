package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/sesame-knock/sesame/policy"
	"github.com/sesame-knock/sesame/totp"
)

// totpOpts are `sesame knock --totp` and the door settings it may override.
type totpOpts struct {
	File   string
	Lo, Hi uint16
	Length int
	Step   time.Duration
	Proto  policy.Proto
	At     time.Time // zero: now
	Custom bool      // a totp-only option was given
}

func (t *totpOpts) setOpt(name, val string) error {
	if name != "totp" {
		t.Custom = true
	}
	switch name {
	case "totp":
		t.File = val
	case "port-range":
		lo, hi, err := policy.ParsePortRange(val)
		if err != nil {
			return usageErrorf("bad --port-range: %v: want LO-HI, e.g. 20000-29999", err)
		}
		t.Lo, t.Hi = lo, hi
	case "length":
		n, err := strconv.Atoi(val)
		if err != nil || n < policy.MinTOTPLength || n > policy.MaxTOTPLength {
			return usageErrorf("bad --length %q: want %d to %d", val, policy.MinTOTPLength, policy.MaxTOTPLength)
		}
		t.Length = n
	case "step":
		d, err := time.ParseDuration(val)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return usageErrorf("bad --step %q: want a whole number of seconds such as 30s", val)
		}
		t.Step = d
	case "protocol":
		p, err := policy.ParseProto(val)
		if err != nil {
			return usageErrorf("bad --protocol: %v", err)
		}
		t.Proto = p
	case "at":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			t.At = time.Unix(n, 0)
		} else if ts, err := time.Parse(time.RFC3339, val); err == nil {
			t.At = ts
		} else {
			return usageErrorf("bad --at %q: want unix seconds or an RFC 3339 time", val)
		}
	}
	return nil
}

// finish checks the operands of a TOTP knock and derives its steps.
func (t *totpOpts) finish(o *knockOpts, operands []string) error {
	if t.File == "" {
		return usageErrorf("--port-range, --length, --step, --protocol and --at go with --totp SECRET_FILE")
	}
	if len(operands) != 1 {
		return usageErrorf("with --totp, give HOST only (the ports are derived)")
	}
	o.Host = operands[0]
	if t.Lo == 0 {
		t.Lo, t.Hi = policy.DefaultTOTPLo, policy.DefaultTOTPHi
	}
	if t.Length == 0 {
		t.Length = policy.DefaultTOTPLength
	}
	if t.Step == 0 {
		t.Step = policy.DefaultTOTPStep
	}
	if t.Proto == 0 {
		t.Proto = policy.TCP
	}
	if int(t.Hi)-int(t.Lo)+1 < t.Length {
		return usageErrorf("--port-range %d-%d holds fewer than %d ports", t.Lo, t.Hi, t.Length)
	}
	b, err := os.ReadFile(t.File)
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	secret, err := totp.ParseSecret(b)
	if err != nil {
		return fmt.Errorf("secret file %s: %w", t.File, err)
	}
	at := t.At
	if at.IsZero() {
		at = time.Now()
	}
	for _, p := range totp.Sequence(secret, totp.Counter(at, t.Step), t.Lo, t.Hi, t.Length) {
		o.Steps = append(o.Steps, policy.PortProto{Port: p, Proto: t.Proto})
	}
	return nil
}

const keygenUsage = `usage: sesame keygen [-o FILE] [--force]
       sesame keygen --spa [-o FILE] [--force] [--server HOST]
Writes a new random 160-bit TOTP secret, base32 on one line, to FILE (mode
0600; an existing FILE is refused unless --force) or to standard output.
With --spa, writes SPA keys in fwknop --key-gen format (KEY_BASE64,
HMAC_KEY_BASE64) instead and prints a ~/.fwknoprc stanza for the fwknop
client (server HOST, default server.example.com) on standard output.
`

// keygenMain runs `sesame keygen`.
func keygenMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keygenUsage) }
	out := fs.String("o", "", "write the secret to `FILE` (mode 0600)")
	force := fs.Bool("force", false, "overwrite FILE")
	spaKeys := fs.Bool("spa", false, "write SPA keys (fwknop format)")
	server := fs.String("server", "", "the server's name in the ~/.fwknoprc stanza (--spa)")
	if err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	if *spaKeys {
		return keygenSPA(*out, *force, *server, stdout, stderr) // spa.go
	}
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		fmt.Fprintf(stderr, "sesame keygen: %v\n", err)
		return 1
	}
	line := totp.EncodeSecret(secret) + "\n"
	if *out == "" {
		fmt.Fprint(stdout, line)
		return 0
	}
	if err := writeSecret(*out, line, *force); err != nil {
		fmt.Fprintf(stderr, "sesame keygen: %v\n", err)
		return 1
	}
	return 0
}

// writeSecret creates path with mode 0600 (O_EXCL unless force) and writes
// line. With force, an existing file is replaced through a new file, so
// its old mode cannot leak the new secret.
func writeSecret(path, line string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; use --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil { // against a umask wider than 077's complement
		f.Close()
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

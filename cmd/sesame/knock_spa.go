package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/client"
	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/spa"
)

const spaKnockUsage = `usage: sesame knock --spa KEYFILE [-A PROTO/PORT[,PROTO/PORT...]] [-f SECONDS]
                    [-a ADDR | -s] [-P PORT] [-U USER] [--hmac-digest T] [-4|-6] [-v] HOST
Sends one fwknop-compatible SPA packet (UDP) to HOST, encrypted and
authenticated with the keys in KEYFILE (fwknop --key-gen format, as
sesame keygen --spa writes it).
  -A, --access LIST       ports to ask for, fwknop's order: tcp/22 (default)
                          or tcp/22,udp/53
  -f, --fw-timeout SECONDS  ask for this grant time (message type 3); the
                          server caps it
  -a, --allow-ip ADDR     the address to open for, written in the message
                          (default: this host's source address towards
                          HOST; IPv6 is sesame's extension)
  -s, --source-ip         ask for the packet's source address (0.0.0.0 or
                          ::): use it behind NAT
  -P, --server-port PORT  the server's SPA port (default 62201)
  -U, --spoof-user USER   the user name in the message (default $USER)
      --hmac-digest T     override the key file's HMAC digest (default sha256)
  -4, -6                  use IPv4 or IPv6 only
  -v, --verbose           print what is sent
Options may come before or after HOST.
`

// spaOpts are `sesame knock --spa` and its options, as given.
type spaOpts struct {
	KeyFile string
	Access  string // -A, as given (the verbose line repeats it)
	For     int    // -f seconds
	Addr    string // -a
	Source  bool   // -s
	Port    uint   // -P
	User    string // -U
	Digest  string // --hmac-digest

	req    client.SPA
	server uint16
}

// spaFlags defines --spa and fwknop's client flags on fs.
func spaFlags(fs *flags) *spaOpts {
	s := &spaOpts{}
	fs.StringVar(&s.KeyFile, "spa", "", "")
	fs.StringVarP(&s.Access, "access", "A", "tcp/22", "")
	fs.IntVarP(&s.For, "fw-timeout", "f", 0, "")
	fs.StringVarP(&s.Addr, "allow-ip", "a", "", "")
	fs.switchFlag(&s.Source, "source-ip", "s", "")
	fs.UintVarP(&s.Port, "server-port", "P", spa.DefaultPort, "")
	fs.StringVarP(&s.User, "spoof-user", "U", "", "")
	fs.StringVar(&s.Digest, "hmac-digest", "", "")
	return s
}

// spaFinish checks an SPA knock's operands and options and loads its keys.
func (o *knockOpts) spaFinish(fs *flags, operands []string) error {
	s := o.SPA
	switch {
	case len(operands) != 1:
		return usageErrorf("want one HOST, got %d operands", len(operands))
	case fs.Changed("ipv4") && fs.Changed("ipv6"):
		return usageErrorf("-4 and -6 exclude each other")
	case s.Source && s.Addr != "":
		return usageErrorf("-a and -s exclude each other")
	case s.Port == 0 || s.Port > 65535:
		return usageErrorf("bad -P %d: want a port from 1 to 65535", s.Port)
	case s.For < 0 || s.For > 86400:
		return usageErrorf("bad -f %d: want 1 to 86400 seconds", s.For)
	}
	o.Host, s.server = operands[0], uint16(s.Port)
	r := &s.req
	r.User, r.Source, r.For = s.User, s.Source, time.Duration(s.For)*time.Second
	if r.User == "" {
		r.User = os.Getenv("USER")
	}
	for item := range strings.SplitSeq(s.Access, ",") {
		a, err := spa.ParseAccess(strings.TrimSpace(item))
		if err != nil {
			return usageErrorf("bad -A %q: %v", s.Access, err)
		}
		r.Access = append(r.Access, a)
	}
	if s.Addr != "" {
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			return usageErrorf("bad -a %q: not an IP address", s.Addr)
		}
		r.Addr = a.Unmap()
	}
	keys, err := spa.LoadKeys(s.KeyFile)
	if err == nil {
		err = keys.Validate()
	}
	if err != nil {
		return fmt.Errorf("key file %s: %v", s.KeyFile, err)
	}
	if s.Digest != "" {
		if keys.Digest, err = spa.ParseDigest(s.Digest); err != nil {
			return usageErrorf("%v", err)
		}
	}
	r.Keys = keys
	return nil
}

// spaKnock sends the packet o describes.
func spaKnock(o knockOpts, stdout io.Writer) error {
	s := o.SPA
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, err := client.Resolve(ctx, o.Host, o.Family)
	if err != nil {
		return err
	}
	server := netip.AddrPortFrom(host, s.server)
	m, n, err := client.SendSPA(server, s.req, time.Now())
	if err != nil {
		return err
	}
	if o.Verbose {
		fmt.Fprintf(stdout, "sending SPA packet (%d bytes) to udp %s: user %s, open %s for %s\n", n, server, m.User, s.Access, m.Addr)
	}
	return nil
}

// keygenSPA writes new SPA keys in fwknop --key-gen format to out (mode
// 0600) or stdout, and prints a ~/.fwknoprc stanza for them.
func keygenSPA(out string, force bool, server string, stdout io.Writer) error {
	keys, err := spa.GenerateKeys(rand.Reader)
	if err != nil {
		return err
	}
	if server == "" {
		server = "server.example.com"
	}
	stanza := keys.FwknopRC("sesame", server, spa.DefaultPort, []spa.Access{{Proto: "tcp", Port: 22}})
	if out == "" || out == "-" {
		fmt.Fprint(stdout, keys.KeyFile())
		fmt.Fprintf(stdout, "\n# ~/.fwknoprc for the client (fwknop -n sesame):\n%s", stanza)
		return nil
	}
	if err := secretfile.Write(out, keys.KeyFile(), force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# Wrote %s. Give the client this ~/.fwknoprc stanza (mode 0600), then run fwknop -n sesame:\n%s", out, stanza)
	return nil
}

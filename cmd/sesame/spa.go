package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sesame-knock/sesame/spa"
)

const spaKnockUsage = `usage: sesame knock --spa KEYFILE [-A PROTO/PORT[,PROTO/PORT...]] [-f SECONDS]
                    [-a ADDR | -s] [-P PORT] [-U USER] [--hmac-digest T] [-4|-6] [-v] HOST
Sends one fwknop-compatible SPA packet (UDP) to HOST, encrypted and
authenticated with the keys in KEYFILE (fwknop --key-gen format, as
sesame keygen --spa writes it).
  -A LIST     ports to ask for, fwknop's order: tcp/22 (default) or tcp/22,udp/53
  -f SECONDS  ask for this grant time (message type 3); the server caps it
  -a ADDR     the address to open for, written in the message (default: this
              host's source address towards HOST; IPv6 is sesame's extension)
  -s          ask for the packet's source address (0.0.0.0 or ::): use it behind NAT
  -P PORT     the server's SPA port (default 62201)
  -U USER     the user name in the message (default $USER)
  --hmac-digest T   override the key file's HMAC digest (default sha256)
  -4, -6      use IPv4 or IPv6 only
`

// hasSPAFlag reports whether a knock command line asks for SPA.
func hasSPAFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--spa" || a == "-spa" || strings.HasPrefix(a, "--spa=") || strings.HasPrefix(a, "-spa=") {
			return true
		}
	}
	return false
}

// spaKnockMain runs `sesame knock --spa`: 0 when the packet was sent, 1 on
// an error, 2 on a usage error.
func spaKnockMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("knock --spa", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, spaKnockUsage) }
	keyFile := fs.String("spa", "", "")
	accessList := fs.String("A", "tcp/22", "")
	timeout := fs.Int("f", 0, "")
	addrStr := fs.String("a", "", "")
	source := fs.Bool("s", false, "")
	port := fs.Uint("P", spa.DefaultPort, "")
	user := fs.String("U", "", "")
	digest := fs.String("hmac-digest", "", "")
	v4 := fs.Bool("4", false, "")
	v6 := fs.Bool("6", false, "")
	verbose := fs.Bool("v", false, "")
	// Flags may follow HOST (fwknop users write them anywhere).
	operands, status, ok := parseInterspersed(fs, args)
	if !ok {
		return status
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sesame knock: "+format+"\n%s", append(a, spaKnockUsage)...)
		return 2
	}
	switch {
	case len(operands) != 1:
		return usageErr("want one HOST, got %d operands", len(operands))
	case *v4 && *v6:
		return usageErr("-4 and -6 exclude each other")
	case *source && *addrStr != "":
		return usageErr("-a and -s exclude each other")
	case *port == 0 || *port > 65535:
		return usageErr("bad -P %d: want a port from 1 to 65535", *port)
	case *timeout < 0 || *timeout > 86400:
		return usageErr("bad -f %d: want 1 to 86400 seconds", *timeout)
	}
	keys, err := spa.LoadKeys(*keyFile)
	if err == nil {
		err = keys.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: key file %s: %v\n", *keyFile, err)
		return 1
	}
	if *digest != "" {
		if keys.Digest, err = spa.ParseDigest(*digest); err != nil {
			return usageErr("%v", err)
		}
	}
	m := spa.Message{User: *user, Type: spa.TypeAccess}
	if m.User == "" {
		m.User = os.Getenv("USER")
	}
	if m.User == "" {
		m.User = "sesame"
	}
	for item := range strings.SplitSeq(*accessList, ",") {
		a, err := spa.ParseAccess(strings.TrimSpace(item))
		if err != nil {
			return usageErr("bad -A %q: %v", *accessList, err)
		}
		m.Access = append(m.Access, a)
	}
	if *timeout > 0 {
		m.Type, m.ClientTimeout = spa.TypeClientTimeoutAccess, time.Duration(*timeout)*time.Second
	}
	family := 0
	if *v4 {
		family = 4
	} else if *v6 {
		family = 6
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, err := resolveKnockHost(ctx, operands[0], family)
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: %v\n", err)
		return 1
	}
	server := netip.AddrPortFrom(host, uint16(*port))
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: %s: %v\n", server, err)
		return 1
	}
	defer conn.Close()
	switch {
	case *source && host.Is4():
		m.Addr = netip.IPv4Unspecified()
	case *source:
		m.Addr = netip.IPv6Unspecified()
	case *addrStr != "":
		if m.Addr, err = netip.ParseAddr(*addrStr); err != nil {
			return usageErr("bad -a %q: not an IP address", *addrStr)
		}
		m.Addr = m.Addr.Unmap()
	default:
		m.Addr = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	}
	wire, err := spa.Encode(keys, m, rand.Reader, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "sesame knock: %v\n", err)
		return 1
	}
	if *verbose {
		fmt.Fprintf(stdout, "sending SPA packet (%d bytes) to udp %s: user %s, open %s for %s\n", len(wire), server, m.User, *accessList, m.Addr)
	}
	if _, err := conn.Write([]byte(wire)); err != nil {
		fmt.Fprintf(stderr, "sesame knock: send to %s: %v\n", server, err)
		return 1
	}
	return 0
}

// keygenSPA writes new SPA keys in fwknop --key-gen format to out (mode
// 0600) or stdout, and prints a ~/.fwknoprc stanza for them.
func keygenSPA(out string, force bool, server string, stdout, stderr io.Writer) int {
	keys, err := spa.GenerateKeys(rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "sesame keygen: %v\n", err)
		return 1
	}
	if server == "" {
		server = "server.example.com"
	}
	stanza := keys.FwknopRC("sesame", server, spa.DefaultPort, []spa.Access{{Proto: "tcp", Port: 22}})
	if out == "" || out == "-" {
		fmt.Fprint(stdout, keys.KeyFile())
		fmt.Fprintf(stdout, "\n# ~/.fwknoprc for the client (fwknop -n sesame):\n%s", stanza)
		return 0
	}
	if err := writeSecret(out, keys.KeyFile(), force); err != nil {
		fmt.Fprintf(stderr, "sesame keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "# Wrote %s. Give the client this ~/.fwknoprc stanza (mode 0600), then run fwknop -n sesame:\n%s", out, stanza)
	return 0
}

// Command sesame is an nftables-native port-knocking daemon and its client.
// This file only dispatches verbs; the work lives in the packages.
package main

import (
	"fmt"
	"io"
	"os"
)

// Stamped by the Makefile with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `usage: sesame VERB [FLAGS]

verbs:
  run     [-c FILE] [--log-format text|json] [--log-level LEVEL]
          the daemon, in the foreground (systemd supervises)
  check   [-c FILE] [--ruleset]
          validate the config; --ruleset prints the nftables ruleset
  status  [-c FILE] [--json]
          the grants in the kernel now
  grant   [-c FILE] [--for DURATION] DOOR ADDR
          open DOOR's ports for ADDR by hand (default: its open_for)
  revoke  [-c FILE] DOOR ADDR
          close them again before the grant expires
  down    [-c FILE] [--table NAME] --yes
          remove the nftables table (uninstall; stop the daemon first)
  knock   [-u] [-d MS] [-4|-6] [-v] [--wait PORT] HOST PORT[:PROTO]...
          send a knock sequence
  knock   --totp SECRET_FILE [--port-range R --length N --step D --protocol P] HOST
          send the current TOTP sequence
  knock   --spa KEYFILE [-A tcp/22] [-f SECONDS] [-a ADDR|-s] [-P PORT] [-4|-6] HOST
          send one fwknop-compatible SPA packet
  keygen  [-o FILE] [--force]
          write a new random TOTP secret (base32, mode 0600)
  keygen  --spa [-o FILE] [--force] [--server HOST]
          write SPA keys (fwknop format) and print a ~/.fwknoprc stanza
  convert [FILE]
          convert a knockd config (default /etc/knockd.conf) to sesame HCL
  version print version, commit and Go version

The default config is /etc/sesame/sesame.hcl.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "run":
		return runMain(rest, stderr)
	case "check":
		return checkMain(rest, stdout, stderr)
	case "status":
		return statusMain(rest, stdout, stderr)
	case "knock":
		return knockMain(rest, stdout, stderr)
	case "keygen":
		return keygenMain(rest, stdout, stderr)
	case "convert":
		return convertMain(rest, stdout, stderr)
	case "grant":
		return grantMain(rest, stdout, stderr)
	case "revoke":
		return revokeMain(rest, stdout, stderr)
	case "down":
		return downMain(rest, stdout, stderr)
	case "version", "--version", "-version":
		return versionMain(stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sesame: unknown verb %q\n\n%s", verb, usage)
	return 2
}

// Command sesame is an nftables-native port-knocking daemon and its client.
// It is thin: main dispatches the verb, each verb parses its flags
// (flags.go), calls into the packages and returns an error, and only main
// turns errors into an exit status (0 ok, 1 failure, 2 usage) and exits.
package main

import (
	"errors"
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
  doctor  [-c FILE]
          what else in the host's firewall blocks or bypasses the guarded ports
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
  convert --fwknop [FILE] [--key-dir DIR]
          convert fwknopd's access.conf to sesame SPA doors
  version print version, commit and Go version

Every verb takes -h or --help. The default config is /etc/sesame/sesame.hcl.
`

// verbFunc runs one verb. It writes its results to stdout and its warnings
// to stderr, and returns what went wrong (see status).
type verbFunc func(args []string, stdout, stderr io.Writer) error

var verbs = map[string]verbFunc{
	"run":     runCmd,
	"check":   checkCmd,
	"status":  statusCmd,
	"doctor":  doctorCmd,
	"grant":   grantCmd,
	"revoke":  revokeCmd,
	"down":    downCmd,
	"knock":   knockCmd,
	"keygen":  keygenCmd,
	"convert": convertCmd,
	"version": versionCmd,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the verb in args[0] and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-version":
		name = "version"
	}
	verb, ok := verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "sesame: unknown verb %q\n\n%s", name, usage)
		return 2
	}
	return status(name, verb(rest, stdout, stderr), stdout, stderr)
}

// usageError is a command-line mistake: exit status 2, after
// "sesame VERB: msg" and the usage text (if any) on stderr.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a *usageError without a usage text; the flag parser
// adds the verb's.
func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// helpError is -h or --help: the verb's usage on stdout, exit status 0.
type helpError struct{ usage string }

func (e *helpError) Error() string { return "help requested" }

// exitStatus ends a verb that has already said why on stderr (diagnostics
// with file:line:col, convert's warnings) with that status.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// status reports err the one way every verb shares and returns the exit
// status: 0 for nil, 2 for a usage error, 1 for any other error.
func status(verb string, err error, stdout, stderr io.Writer) int {
	var (
		help *helpError
		ue   *usageError
		st   exitStatus
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sesame %s: %s\n%s", verb, ue.msg, ue.usage)
		return 2
	case errors.As(err, &st):
		return int(st)
	}
	fmt.Fprintf(stderr, "sesame %s: %v\n", verb, err)
	return 1
}

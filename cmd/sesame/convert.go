package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sesame-knock/sesame/migrate/knockd"
)

const convertUsage = `usage: sesame convert [FILE]
       sesame convert --fwknop [FILE] [--key-dir DIR]
Converts a knockd config (default /etc/knockd.conf) into a sesame config on
stdout. What cannot be mapped is kept as a comment and reported on stderr
with its knockd.conf line, as is a door that a port scan can open (with the
odds, as sesame check says). Exit status: 0 all mapped, 2 converted with
warnings, 1 unreadable file.
`

// convertMain runs `sesame convert [FILE]`.
func convertMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--fwknop" || args[0] == "-fwknop") {
		return convertFwknopMain(args[1:], stdout, stderr) // convert_fwknop.go
	}
	path := "/etc/knockd.conf"
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stdout, convertUsage)
		return 0
	case len(args) == 1 && len(args[0]) > 1 && args[0][0] == '-':
		fmt.Fprintf(stderr, "sesame convert: unknown option %s\n%s", args[0], convertUsage)
		return 2
	case len(args) == 1:
		path = args[0]
	case len(args) > 1:
		fmt.Fprintf(stderr, "sesame convert: one FILE at most\n%s", convertUsage)
		return 2
	}
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "sesame convert: %v\n", err)
		return 1
	}
	f, err := knockd.Parse(src)
	if err != nil {
		fmt.Fprintf(stderr, "sesame convert: %s: %v\n", path, err)
		return 1
	}
	res := knockd.Convert(f, path)
	if _, err := stdout.Write(res.HCL); err != nil {
		fmt.Fprintf(stderr, "sesame convert: write: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		if w.Line > 0 {
			fmt.Fprintf(stderr, "%s:%d: %s\n", path, w.Line, w.Msg)
		} else {
			fmt.Fprintf(stderr, "%s: %s\n", path, w.Msg)
		}
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "sesame convert: %d warning(s); review them and the comments in the output\n", len(res.Warnings))
		return 2
	}
	return 0
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sesame-knock/sesame/migrate/fwknop"
)

const convertFwknopUsage = `usage: sesame convert --fwknop [FILE] [--key-dir DIR]
Converts fwknopd's access.conf (default /etc/fwknop/access.conf) into sesame
SPA doors on stdout. Each stanza's keys go to a key file DIR/fwknop-NAME.spa
(mode 0600, never overwritten); without --key-dir the config refers to
/etc/sesame/ and no key file is written (the keys are secrets: they are
never printed). What cannot be mapped is reported on stderr with its line.
Exit status: 0 all mapped, 2 converted with warnings, 1 error.
`

func convertFwknopMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("convert --fwknop", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, convertFwknopUsage) }
	keyDir := fs.String("key-dir", "", "")
	operands, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	path := "/etc/fwknop/access.conf"
	switch len(operands) {
	case 0:
	case 1:
		path = operands[0]
	default:
		fmt.Fprintf(stderr, "sesame convert: one FILE at most\n%s", convertFwknopUsage)
		return 2
	}
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "sesame convert: %v\n", err)
		return 1
	}
	stanzas, err := fwknop.Parse(src)
	if err != nil {
		fmt.Fprintf(stderr, "sesame convert: %s: %v\n", path, err)
		return 1
	}
	dir := "/etc/sesame"
	if *keyDir != "" {
		if dir, err = filepath.Abs(*keyDir); err != nil {
			fmt.Fprintf(stderr, "sesame convert: %v\n", err)
			return 1
		}
	}
	res := fwknop.Convert(stanzas, path, dir)
	status := 0
	if *keyDir != "" {
		for _, kf := range res.KeyFiles {
			if err := writeSecret(kf.Path, kf.Content, false); err != nil {
				fmt.Fprintf(stderr, "sesame convert: key file: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "sesame convert: wrote %s (mode 0600)\n", kf.Path)
		}
	} else if len(res.KeyFiles) > 0 {
		fmt.Fprintf(stderr, "sesame convert: %d key file(s) not written (they hold secrets): rerun with --key-dir DIR to write them with mode 0600\n", len(res.KeyFiles))
		status = 2
	}
	if _, err := stdout.Write(res.HCL); err != nil {
		fmt.Fprintf(stderr, "sesame convert: write: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, w.Line, w.Msg)
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "sesame convert: %d item(s) not converted; review them\n", len(res.Warnings))
		status = 2
	}
	return status
}

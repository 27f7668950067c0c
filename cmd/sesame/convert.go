package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sesame-knock/sesame/internal/secretfile"
	"github.com/sesame-knock/sesame/migrate"
	"github.com/sesame-knock/sesame/migrate/fwknop"
	"github.com/sesame-knock/sesame/migrate/knockd"
)

const convertUsage = `usage: sesame convert [FILE]
       sesame convert --fwknop [FILE] [--key-dir DIR]
Converts a knockd config (default /etc/knockd.conf) into a sesame config on
stdout. What cannot be mapped is kept as a comment and reported on stderr
with its knockd.conf line, as is a door that a port scan can open (with the
odds, as sesame check says).
With --fwknop, converts fwknopd's access.conf (default
/etc/fwknop/access.conf) into sesame SPA doors. Each stanza's keys go to a
key file DIR/fwknop-NAME.spa (mode 0600, never overwritten); without
--key-dir the config refers to /etc/sesame/ and no key file is written (the
keys are secrets: they are never printed).
Exit status: 0 all mapped, 2 converted with warnings, 1 unreadable file.
`

// convertCmd runs `sesame convert [--fwknop] [FILE] [--key-dir DIR]`: one
// path for every converter, which prints any migrate.Result the same way.
func convertCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "")
	fs.text = convertUsage
	fwk := fs.boolFlag("fwknop", "")
	keyDir := fs.String("key-dir", "", "")
	operands, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(operands) > 1 {
		return fs.usageErr("one FILE at most")
	}
	if *keyDir != "" && !*fwk {
		return fs.usageErr("--key-dir goes with --fwknop")
	}
	path, convert := "/etc/knockd.conf", convertKnockd
	if *fwk {
		path = "/etc/fwknop/access.conf"
		dir := "/etc/sesame"
		if *keyDir != "" {
			if dir, err = filepath.Abs(*keyDir); err != nil {
				return err
			}
		}
		convert = func(src []byte, source string) (migrate.Result, error) {
			return convertFwknop(src, source, dir)
		}
	}
	if len(operands) == 1 {
		path = operands[0]
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res, err := convert(src, path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeResult(res, path, *keyDir != "", stdout, stderr)
}

func convertKnockd(src []byte, source string) (migrate.Result, error) {
	f, err := knockd.Parse(src)
	if err != nil {
		return migrate.Result{}, err
	}
	return knockd.Convert(f, source), nil
}

func convertFwknop(src []byte, source, keyDir string) (migrate.Result, error) {
	stanzas, err := fwknop.Parse(src)
	if err != nil {
		return migrate.Result{}, err
	}
	return fwknop.Convert(stanzas, source, keyDir), nil
}

// writeResult writes a conversion: its key files (when writeKeys; never
// over an existing file), the HCL on stdout, and each warning on stderr
// with the source's line. It returns exit status 2 when anything needs a
// person's review.
func writeResult(res migrate.Result, path string, writeKeys bool, stdout, stderr io.Writer) error {
	review := false
	if writeKeys {
		for _, kf := range res.KeyFiles {
			if err := secretfile.Write(kf.Path, kf.Content, false); err != nil {
				return fmt.Errorf("key file: %w", err)
			}
			fmt.Fprintf(stderr, "sesame convert: wrote %s (mode 0600)\n", kf.Path)
		}
	} else if len(res.KeyFiles) > 0 {
		fmt.Fprintf(stderr, "sesame convert: %d key file(s) not written (they hold secrets): rerun with --key-dir DIR to write them with mode 0600\n", len(res.KeyFiles))
		review = true
	}
	if _, err := stdout.Write(res.HCL); err != nil {
		return fmt.Errorf("write: %w", err)
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
		review = true
	}
	if review {
		return exitStatus(2)
	}
	return nil
}

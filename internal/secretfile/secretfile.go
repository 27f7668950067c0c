// Package secretfile writes files that hold secrets (TOTP secrets, SPA
// keys): mode 0600 from the first byte, never over an existing file unless
// asked, and synced before they count as written.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Write creates path with mode 0600 and writes content. An existing path
// is refused unless force; with force it is replaced through a new file,
// so its old mode cannot leak the new secret.
func Write(path, content string, force bool) error {
	if force {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

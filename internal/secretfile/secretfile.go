// Package secretfile writes files that hold secrets (TOTP secrets, SPA
// keys, fleet keys): mode 0600 from the first byte, never over an existing
// file unless asked, and synced before they count as written. Read refuses
// one that others may read.
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

// ErrNotRegular is Read's error for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ModeError is Read's error for a file that group or others may read or
// write.
type ModeError struct {
	Path string
	Mode fs.FileMode // its permission bits
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s has mode %04o: group or others may read or write it. Run chmod 600 %s", e.Path, e.Mode, e.Path)
}

// Read returns the content of the secret file at path. It refuses a
// missing file (an error that matches fs.ErrNotExist), one that is not a
// regular file (ErrNotRegular, before opening it: a FIFO would block), and
// one whose mode lets group or others in (*ModeError).
func Read(path string) ([]byte, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, err
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	case st.Mode().Perm()&0o077 != 0:
		return nil, &ModeError{Path: path, Mode: st.Mode().Perm()}
	}
	return os.ReadFile(path)
}

package onetime

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/sesame-knock/sesame/internal/atomicfile"
)

// The state file of a door, in the policy's state_dir, lists the keys
// (Seq.Key) of the sequences used, one per line after a header. It is
// rewritten atomically (temporary file, fsync, rename, fsync of the
// directory), mode 0600, before the grant: a crash loses a grant, never
// allows a reuse.
const (
	stateHeader  = "# sesame one-time-used v1"
	maxStateSize = 16 << 20 // bytes: 250,000 keys, far beyond any real file
)

// ErrUsed is returned by MarkUsed for a sequence already recorded.
var ErrUsed = errors.New("sequence already used")

// ErrCorruptState is wrapped by ReadUsed for a file that is not a state
// file: nothing can say which sequences were used, so the door must not
// open until a person looks.
var ErrCorruptState = errors.New("not a one-time state file")

// StateFile returns the path of door's state file in stateDir. Door names
// are validated by policy (letters, digits, "_", ".", "-").
func StateFile(stateDir, door string) string {
	return filepath.Join(stateDir, "one-time-"+door)
}

// ReadUsed returns the keys recorded at path. A missing file is a door
// that used nothing yet.
func ReadUsed(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", path, ErrCorruptState, len(b), maxStateSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != stateHeader {
		return nil, fmt.Errorf("%s: %w: want first line %q", path, ErrCorruptState, stateHeader)
	}
	used := map[string]bool{}
	for n := 2; sc.Scan(); n++ {
		k := sc.Text()
		if _, err := hex.DecodeString(k); err != nil || len(k) != 64 {
			return nil, fmt.Errorf("%s: %w: line %d is not a sequence key", path, ErrCorruptState, n)
		}
		used[k] = true
	}
	return used, sc.Err()
}

// MarkUsed records key at path, creating the file and its directory (mode
// 0700) when missing. It returns ErrUsed if key is already recorded, and
// once the record is durable otherwise.
func MarkUsed(path, key string) error {
	used, err := ReadUsed(path)
	if err != nil {
		return err
	}
	if used[key] {
		return ErrUsed
	}
	used[key] = true
	return writeUsed(path, used)
}

// Unmark removes key from the record at path (a grant that was marked but
// could not be applied). A key that is not recorded is not an error.
func Unmark(path, key string) error {
	used, err := ReadUsed(path)
	if err != nil {
		return err
	}
	if !used[key] {
		return nil
	}
	delete(used, key)
	return writeUsed(path, used)
}

func writeUsed(path string, used map[string]bool) error {
	keys := make([]string, 0, len(used))
	for k := range used {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteString(stateHeader + "\n")
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("record used sequence: %w", err)
	}
	if err := atomicfile.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("record used sequence in %s: %w", path, err)
	}
	return nil
}

// CheckWritable reports why this process could not write a state file in
// dir, or nil: dir (or, when missing, the nearest directory above it,
// where MkdirAll would create it) must be a directory this process may
// create files in, as access(2) judges with the effective ids and
// capabilities (a read-only mount, ProtectSystem= for one, fails it).
func CheckWritable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
		if err := unix.Faccessat(unix.AT_FDCWD, d, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
			what := "directory " + d
			if d != dir {
				what += " (where " + dir + " would be created)"
			}
			return fmt.Errorf("%s is not writable: %w", what, err)
		}
		return nil
	}
}

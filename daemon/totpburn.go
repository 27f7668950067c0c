package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sesame-knock/sesame/internal/atomicfile"
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
	"github.com/sesame-knock/sesame/policy"
)

// burnFile, in the policy's state_dir, keeps the TOTP sequences that
// opened, so that a restart does not re-open their replay window. Lines
// are "door<TAB>client<TAB>counter" after a header; door and client names
// cannot hold tabs or newlines (policy validates them).
const (
	burnFile   = "totp-burned"
	burnHeader = "# sesame totp-burned v1"
	maxBurns   = 1 << 20 // bytes: far more than any real set of burns
)

// hasTOTP reports whether the policy in force has a TOTP door.
func (l *loop) hasTOTP() bool {
	for i := range l.p.Doors {
		if l.p.Doors[i].Kind() == policy.KindTOTP {
			return true
		}
	}
	return false
}

// loadBurns restores the burns saved by an earlier run. A missing file is
// a first start; a corrupt one is logged and ignored (the burns of at most
// one validity window are lost, as without the file).
func (l *loop) loadBurns() {
	if !l.hasTOTP() {
		return
	}
	path := filepath.Join(l.p.StateDir, burnFile)
	bs, err := readBurns(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		l.log.Warn(logevent.TOTPBurnsUnreadable, "file", path, "err", err, "note", "sequences used before the restart may be accepted again within their window")
		return
	}
	l.tm.Restore(bs)
	l.log.Debug(logevent.TOTPBurnsRestored, "file", path, "burns", len(bs))
}

// saveBurns writes the matcher's burns; the loop calls it before the grant
// of a TOTP knock is applied, so a crash between the two cannot re-open the
// sequence. A failure is logged and the grant still goes ahead: the knock
// was valid, and the burn holds in memory until a restart.
func (l *loop) saveBurns() {
	path := filepath.Join(l.p.StateDir, burnFile)
	var b bytes.Buffer
	b.WriteString(burnHeader + "\n")
	for _, x := range l.tm.Burns() {
		fmt.Fprintf(&b, "%s\t%s\t%d\n", x.Door, x.Client, x.Counter)
	}
	err := os.MkdirAll(l.p.StateDir, 0o700)
	if err == nil {
		err = atomicfile.WriteFile(path, b.Bytes(), 0o600)
	}
	if err != nil {
		l.log.Error(logevent.TOTPBurnsNotSaved, "file", path, "err", err, "note", "a restart would forget them")
	}
}

func readBurns(path string) ([]knock.Burn, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxBurns {
		return nil, fmt.Errorf("%d bytes: larger than %d", len(data), maxBurns)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != burnHeader {
		return nil, fmt.Errorf("not a burns file: want first line %q", burnHeader)
	}
	var out []knock.Burn
	for n := 2; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("line %d: want door, client and counter separated by tabs", n)
		}
		c, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: counter: %w", n, err)
		}
		out = append(out, knock.Burn{Door: f[0], Client: f[1], Counter: c})
	}
	return out, sc.Err()
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMain builds the binary under test once (or takes $SESAME_BIN), and
// checks that the suite left the root namespace's ruleset exactly as it
// found it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sesame-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer removeTools()
	if SesameBin = os.Getenv("SESAME_BIN"); SesameBin == "" {
		SesameBin = filepath.Join(dir, "sesame")
		if err := build(SesameBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	} else if SesameBin, err = binPath(SesameBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	// Case 10: the root namespace's ruleset is untouched (nft -s: without
	// counters, which move with traffic). Only checked as
	// root (otherwise every test skips and nft cannot list it anyway).
	var before string
	if os.Geteuid() == 0 {
		out, err := exec.Command("nft", "-s", "list", "ruleset").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: nft list ruleset: %v: %s\n", err, out)
			return 1
		}
		before = string(out)
	}
	code := m.Run()
	if os.Geteuid() == 0 {
		out, err := exec.Command("nft", "-s", "list", "ruleset").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: nft list ruleset: %v: %s\n", err, out)
			return 1
		}
		if string(out) != before {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: the root namespace's ruleset changed during the suite\nbefore:\n%s\nafter:\n%s\n", before, out)
			return 1
		}
	}
	return code
}

// binPath makes $SESAME_BIN absolute. A relative path is taken from the
// module root (make runs there: SESAME_BIN=bin/sesame), or else from the
// working directory (go test runs in the package directory).
func binPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	if root, err := moduleRoot(); err == nil {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return filepath.Join(root, p), nil
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("SESAME_BIN: %w", err)
	}
	return abs, nil
}

// build compiles ./cmd/sesame of the module that holds this package.
func build(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/sesame")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/sesame: %v\n%s", err, b)
	}
	return nil
}

// moduleRoot walks up from the working directory (the package's directory
// under go test) to the directory with go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

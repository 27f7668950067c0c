package fuzzlist

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const root = "../.."

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// declared returns every fuzz target of the module as DIR:Target.
func declared(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(src), -1) {
			out = append(out, filepath.ToSlash(dir)+":"+m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// listed returns the Makefile's FUZZ_TARGETS.
func listed(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(mk), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "FUZZ_TARGETS") })
	if start < 0 {
		t.Fatal("the Makefile has no FUZZ_TARGETS")
	}
	var out []string
	for _, l := range lines[start:] {
		if _, v, ok := strings.Cut(l, ":="); ok && strings.HasPrefix(l, "FUZZ_TARGETS") {
			l = v
		}
		more := strings.HasSuffix(l, "\\")
		out = append(out, strings.Fields(strings.TrimSuffix(l, "\\"))...)
		if !more {
			break
		}
	}
	slices.Sort(out)
	return out
}

func TestMakefileNamesEveryFuzzTarget(t *testing.T) {
	t.Parallel()
	decl, list := declared(t), listed(t)
	if len(decl) == 0 {
		t.Fatal("found no fuzz target: is the walk rooted at the module?")
	}
	if diff := cmp.Diff(decl, list); diff != "" {
		t.Errorf("the Makefile's FUZZ_TARGETS (+) differs from the module's func Fuzz targets (-); make fuzz runs the list:\n%s", diff)
	}
}

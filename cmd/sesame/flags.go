package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// flags is a verb's flag set. Parsing is pflag's, GNU style: short flags
// group (-uv) and take their value attached or next (-d100, -d 100), long
// flags take --delay=100 or --delay 100, flags and operands mix in any
// order, and "--" ends the flags.
type flags struct {
	*pflag.FlagSet
	synopsis string // the usage line after "usage: sesame "
	text     string // a whole usage text instead of the generated one
}

func newFlags(verb, synopsis string) *flags {
	fs := pflag.NewFlagSet("sesame "+verb, pflag.ContinueOnError)
	fs.Usage = func() {} // the verb's usage goes out through status
	fs.SortFlags = false
	return &flags{FlagSet: fs, synopsis: synopsis}
}

// usage is the verb's usage text.
func (f *flags) usage() string {
	if f.text != "" {
		return f.text
	}
	f.helpFlag()
	return "usage: sesame " + f.synopsis + "\n" + f.FlagUsages()
}

// helpFlag defines -h, --help last, as pflag's own would be: it stops the
// parse at once with pflag.ErrHelp.
func (f *flags) helpFlag() {
	if f.Lookup("help") == nil {
		f.BoolFuncP("help", "h", "this help", func(string) error { return pflag.ErrHelp })
	}
}

// boolFlag defines a flag that is true when given: --name, or
// --name=true|false as Go's flag package takes it.
func (f *flags) boolFlag(name, usage string) *bool {
	p := new(bool)
	f.BoolFunc(name, usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return usageErrorf("bad --%s=%s: want true or false, or no value", name, v)
		}
		*p = b
		return nil
	})
	return p
}

// parse parses args and returns the operands. Errors are a *helpError or a
// *usageError carrying the verb's usage.
func (f *flags) parse(args []string) ([]string, error) {
	f.helpFlag()
	err := f.Parse(goForms(f.FlagSet, args))
	if err == nil {
		return f.Args(), nil
	}
	if errors.Is(err, pflag.ErrHelp) {
		return nil, &helpError{usage: f.usage()}
	}
	return nil, &usageError{msg: flagMessage(err), usage: f.usage()}
}

// parseNone parses args and refuses operands.
func (f *flags) parseNone(args []string) error {
	ops, err := f.parse(args)
	if err == nil && len(ops) > 0 {
		err = &usageError{msg: fmt.Sprintf("unexpected argument %q", ops[0]), usage: f.usage()}
	}
	return err
}

// usageErr is a usage error with the verb's usage text.
func (f *flags) usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: f.usage()}
}

// flagMessage words a pflag error as sesame always has (knock's wording
// follows knockd's getopt: "unknown option -x", "option --delay needs a
// value").
func flagMessage(err error) string {
	var (
		ue  *usageError
		ne  *pflag.NotExistError
		vr  *pflag.ValueRequiredError
		iv  *pflag.InvalidValueError
		bad *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &ue): // a value's own check (knock's)
		return ue.msg
	case errors.As(err, &ne):
		if ne.GetSpecifiedShortnames() != "" {
			return "unknown option -" + ne.GetSpecifiedName()
		}
		return "unknown option --" + ne.GetSpecifiedName()
	case errors.As(err, &vr):
		if vr.GetSpecifiedShortnames() != "" {
			return "option -" + vr.GetSpecifiedName() + " needs a value"
		}
		return "option --" + vr.GetSpecifiedName() + " needs a value"
	case errors.As(err, &iv):
		return fmt.Sprintf("bad --%s %q: %v", iv.GetFlag().Name, iv.GetValue(), iv.Unwrap())
	case errors.As(err, &bad):
		return "bad option syntax " + bad.GetSpecifiedFlag()
	}
	return err.Error()
}

// goForms rewrites the forms Go's flag package took and pflag does not,
// before any "--": -name and -name=value for a long flag (names of two or
// more letters) become --name..., and --x or --x=value for a one-letter
// flag become -x... sesame's verbs used Go's flag package, so scripts that
// say `sesame check -ruleset` or `sesame keygen --o FILE` keep working. A
// short-flag group never spells a long flag's name in sesame's verbs.
func goForms(fs *pflag.FlagSet, args []string) []string {
	out := args
	for i, a := range args {
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		var repl string
		if a[1] != '-' {
			if name, _, _ := strings.Cut(a[1:], "="); len(name) > 1 && fs.Lookup(name) != nil {
				repl = "-" + a
			}
		} else if name, _, _ := strings.Cut(a[2:], "="); len(name) == 1 && fs.Lookup(name) == nil && fs.ShorthandLookup(name) != nil {
			repl = a[1:]
		}
		if repl == "" {
			continue
		}
		if &out[0] == &args[0] {
			out = append([]string(nil), args...)
		}
		out[i] = repl
	}
	return out
}

// switchFlag defines a flag that takes no value, as getopt's: --udp=1 is
// an error, not a true.
func (f *flags) switchFlag(p *bool, name, short, usage string) {
	f.BoolFuncP(name, short, usage, func(v string) error {
		if v != "true" {
			return usageErrorf("option --%s takes no value", name)
		}
		*p = true
		return nil
	})
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/sesame-knock/sesame/daemon"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// newFlags returns a flag set that reports errors on stderr and does not
// exit the process.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sesame "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return err
	}
	return nil
}

// flagStatus is the exit status after a flag error: 0 when the user asked
// for help (-h, --help; the usage went to stderr), 2 otherwise.
func flagStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func versionMain(stdout io.Writer) int {
	fmt.Fprintf(stdout, "sesame %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

func checkMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	path := fs.String("c", policy.DefaultPath, "config `file`")
	ruleset := fs.Bool("ruleset", false, "print the nftables ruleset that would be installed")
	if err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	p, diags := policy.Load(*path)
	if len(diags.All()) > 0 {
		diags.Write(stderr, false)
	}
	if diags.HasErrors() {
		return 1
	}
	if *ruleset {
		fmt.Fprint(stdout, nft.Ruleset(p))
		return 0
	}
	fmt.Fprintf(stdout, "%s: ok\n%s", *path, p.Summary())
	return 0
}

func runMain(args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("c", policy.DefaultPath, "config `file`")
	format := fs.String("log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	log, err := newLogger(stderr, *format, *level)
	if err != nil {
		fmt.Fprintf(stderr, "sesame run: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = daemon.Run(ctx, daemon.Options{ConfigPath: *path, Log: log, Notify: sdNotify, Version: version, Commit: commit})
	if cerr := (*daemon.ConfigError)(nil); errors.As(err, &cerr) {
		cerr.Diags.Write(stderr, false)
		return 1
	}
	if err != nil {
		// A startup failure is for a person: plain text, unless the logs
		// are JSON for a machine.
		if *format == "json" {
			log.Error("exit", "err", err.Error())
		} else {
			fmt.Fprintf(stderr, "sesame run: %v\n", err)
		}
		return 1
	}
	return 0
}

// newLogger builds the event logger. Under journald (JOURNAL_STREAM set)
// text lines carry no timestamp (the journal adds its own) and start with
// their syslog priority.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		if os.Getenv("JOURNAL_STREAM") != "" {
			opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
			return slog.New(newJournalHandler(w, opts)), nil
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// explainPerm names the capability behind a permission error, or returns
// nil.
func explainPerm(err error) error {
	if errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: reading nftables needs CAP_NET_ADMIN (run as root)", err)
	}
	return nil
}

// parseInterspersed parses fs from args with flags allowed after operands
// (fwknop users write them anywhere) and returns the operands. When it
// cannot go on it returns ok false and the exit status: 0 after -h, 2 for
// a bad flag (fs has said why).
func parseInterspersed(fs *flag.FlagSet, args []string) (operands []string, status int, ok bool) {
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return operands, 0, true
		}
		operands = append(operands, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

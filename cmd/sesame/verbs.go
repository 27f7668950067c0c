package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/sesame-knock/sesame/daemon"
	"github.com/sesame-knock/sesame/fleet"
	"github.com/sesame-knock/sesame/internal/journal"
	"github.com/sesame-knock/sesame/nft"
	"github.com/sesame-knock/sesame/policy"
)

// configFlag defines -c, --config FILE.
func (f *flags) configFlag(usage string) *string {
	return f.StringP("config", "c", policy.DefaultPath, usage)
}

// versionCmd prints the version. It ignores other arguments, as it always
// has: scripts that call `sesame version --short` keep working.
func versionCmd(args []string, stdout, _ io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			return &helpError{usage: "usage: sesame version\n"}
		}
	}
	fmt.Fprintf(stdout, "sesame %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func checkCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [-c FILE] [--ruleset]")
	path := fs.configFlag("config `file`")
	ruleset := fs.boolFlag("ruleset", "print the nftables ruleset that would be installed")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	p, _, diags := fleet.Load(*path)
	if len(diags.All()) > 0 {
		diags.Write(stderr, false)
	}
	if diags.HasErrors() {
		return exitStatus(1)
	}
	if *ruleset {
		fmt.Fprint(stdout, nft.Ruleset(p))
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok\n%s", *path, p.Summary())
	return nil
}

func runCmd(args []string, _, stderr io.Writer) error {
	fs := newFlags("run", "run [-c FILE] [--log-format text|json] [--log-level LEVEL]")
	path := fs.configFlag("config `file`")
	format := fs.String("log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.parseNone(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *format, *level)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = daemon.Run(ctx, daemon.Options{ConfigPath: *path, Log: log, Notify: sdNotify, Version: version, Commit: commit})
	if cerr := (*daemon.ConfigError)(nil); errors.As(err, &cerr) {
		cerr.Diags.Write(stderr, false)
		return exitStatus(1)
	}
	if err != nil && *format == "json" {
		// A startup failure is for a person: plain text, unless the logs
		// are JSON for a machine.
		log.Error("exit", "err", err.Error())
		return exitStatus(1)
	}
	return err
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
		if journal.Attached() {
			return slog.New(journal.NewHandler(w, opts)), nil
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

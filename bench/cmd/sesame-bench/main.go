// Command sesame-bench runs the end-to-end benchmark of sesame against
// knockd in throwaway network namespaces (root only) and prints one table;
// with -out DIR it also writes DIR/PERFORMANCE.md and two PNG plots. See
// package bench.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/sesame-knock/sesame/bench"
)

func main() {
	sesame := flag.String("sesame", "bin/sesame", "the sesame binary")
	knockd := flag.String("knockd", "knockd", `the knockd binary ("" or "none": sesame only)`)
	quick := flag.Bool("quick", false, "a smoke run: a few knocks, a short low-rate flood, a small transfer")
	out := flag.String("out", "", "write PERFORMANCE.md and the plots to this directory")
	micro := flag.String("micro", "", "output of `go test -bench` to include in PERFORMANCE.md")
	command := flag.String("command", "make bench", "the command to name in PERFORMANCE.md")
	nats := flag.String("nats", "", "a nats-server binary: also measure the local grant with fleet publishing on")
	flag.Parse()
	if err := run(*sesame, *knockd, *nats, *quick, *out, *micro, *command); err != nil {
		fmt.Fprintln(os.Stderr, "sesame-bench:", err)
		os.Exit(1)
	}
}

func run(sesame, knockd, nats string, quick bool, out, micro, command string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, nftables, raw sockets)")
	}
	if knockd == "none" {
		knockd = ""
	}
	if knockd != "" {
		p, err := exec.LookPath(knockd)
		if err != nil {
			return fmt.Errorf("knockd not found (apt-get install knockd, or -knockd none): %w", err)
		}
		knockd = p
	}
	opts := bench.Full(sesame, knockd)
	if quick {
		opts = bench.Quick(sesame, knockd)
	}
	opts.Log = os.Stderr
	opts.NATS = nats
	rs, err := bench.Run(opts)
	if err != nil {
		return err
	}
	bench.WriteText(os.Stdout, rs)
	if out == "" {
		return nil
	}
	return bench.WriteDocs(out, opts, rs, micro, command)
}

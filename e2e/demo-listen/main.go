// Command demo-listen is the demo's stand-in for a guarded service: it
// accepts TCP connections on the given address and greets each one.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: demo-listen ADDR:PORT GREETING")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-listen:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		fmt.Fprintln(c, os.Args[2])
		c.Close()
	}
}

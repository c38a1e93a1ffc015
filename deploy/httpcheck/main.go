// Command httpcheck is the container health check of the iamflow image: the
// final image is distroless (no shell, curl or wget), so compose and
// Kubernetes health checks run this instead.
//
//	httpcheck [-timeout 3s] URL
//
// It exits 0 when GET URL answers 2xx within the timeout, 1 otherwise (with
// the reason on stderr), and 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run parses args, performs the check and returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("httpcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: httpcheck [-timeout 3s] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := check(ctx, nil, fs.Arg(0)); err != nil {
		fmt.Fprintf(stderr, "httpcheck: %v\n", err)
		return 1
	}
	return 0
}

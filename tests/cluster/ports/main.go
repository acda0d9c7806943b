// Command ports prints N consecutive free TCP ports on 127.0.0.1, one per line, searching
// upward from FROM in steps of N and staying below LIMIT:
//
//	go run . N FROM LIMIT
//
// "Free" means this process could listen on every port of the block, as the control plane's
// components (all Go programs, listening with SO_REUSEADDR like this one) will right after: a
// port held by a listener, or by a client socket that the kernel picked as its source port
// (which also blocks SO_REUSEADDR listeners, even in TIME_WAIT), is skipped. The caller keeps
// LIMIT at or below the start of the kernel's ephemeral range, so no later outgoing connection
// can take one of these ports either.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 4 {
		fail("usage: ports N FROM LIMIT")
	}
	n, from, limit := atoi(os.Args[1]), atoi(os.Args[2]), atoi(os.Args[3])
	if n < 1 || from < 1024 || limit > 65536 || from+n > limit {
		fail(fmt.Sprintf("bad range: %d ports from %d below %d", n, from, limit))
	}
	for base := from; base+n <= limit; base += n {
		if blockFree(base, n) {
			for p := base; p < base+n; p++ {
				fmt.Println(p)
			}
			return
		}
	}
	fail(fmt.Sprintf("no %d free consecutive ports between %d and %d on 127.0.0.1", n, from, limit))
}

// blockFree listens on every port of the block at once, then closes them all.
func blockFree(base, n int) bool {
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		open = append(open, l)
	}
	return true
}

func atoi(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		fail(fmt.Sprintf("not a number: %q", s))
	}
	return v
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "ports:", msg)
	os.Exit(1)
}

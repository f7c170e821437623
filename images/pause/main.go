// pause: the one process of a pod sandbox (localhost/pause:dev). It holds the pod's namespaces
// open: it sleeps, reaps the children that end up parented to it (as PID 1 of the pod's PID
// namespace when the pod shares one), and exits 0 on SIGTERM or SIGINT.
//
// Built static (CGO_ENABLED=0) by npm run images; see docs/images.md.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	// A child that ended before Notify sent a SIGCHLD nobody heard.
	reapChildren()
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reapChildren()
	}
}

// reapChildren waits for every child that has ended; one SIGCHLD may stand for several.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

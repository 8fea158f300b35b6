// Command klantbeeld runs the purpose-bound resident-view gateway: the
// embedded demo, the production server, the fake source systems alone, and
// policy tools. All wiring lives in this package; run.go has the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// Command tollgate is the Tollgate API gateway.
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
	"syscall"

	"github.com/tollgate/tollgate/app"
	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/all" // every policy
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Usage: tollgate <command> [flags]

Commands:
  run       -c FILE   run the gateway (control plane and data plane in one process)
  validate  -c FILE   check a configuration file
  version             print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "tollgate %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tollgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tollgate %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if path == "" {
		path = "tollgate.yaml"
	}
	if _, err := config.Load(path); err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	opts := app.Options{ConfigPath: path, Logger: log}
	if path == "" {
		if _, err := os.Stat("tollgate.yaml"); err == nil {
			opts.ConfigPath = "tollgate.yaml"
		} else {
			cfg, stop, err := app.Quickstart()
			if err != nil {
				fmt.Fprintf(stderr, "tollgate: quickstart: %v\n", err)
				return 1
			}
			defer stop()
			opts.Config = cfg
			fmt.Fprint(stdout, app.QuickstartHelp)
		}
	}
	a, err := app.New(opts)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
		} else {
			fmt.Fprintf(stderr, "tollgate: %v\n", err)
		}
		return 1
	}
	if err := a.Start(); err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 1
	}
	log.Info("tollgate started", "proxy", a.ProxyAddr(), "admin", a.AdminAddr(), "version", version)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				a.Reload()
				if err := a.ReopenLogs(); err != nil {
					log.Error("reopening the access log", "err", err)
				}
				continue
			}
			log.Info("draining", "signal", sig.String())
			if err := a.Shutdown(context.Background()); err != nil {
				log.Error("shutdown", "err", err)
				return 1
			}
			log.Info("stopped")
			return 0
		case err := <-a.Errors():
			log.Error("listener failed", "err", err)
			a.Shutdown(context.Background())
			return 1
		}
	}
}

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
  cp        -c FILE   run a control plane: store, admin API, configuration for data planes
  dp        -c FILE   run a data plane: proxy with the configuration of cluster.control_plane
  validate  -c FILE   check a configuration file
  import-openapi SPEC --service NAME [--base-path /v1]
                      print routes (YAML) for an OpenAPI 3 document, one per operation
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
	case "cp":
		return cmdControlPlane(args[1:], stderr)
	case "dp":
		return cmdDataPlane(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "import-openapi":
		return cmdImportOpenAPI(args[1:], stdout, stderr)
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
		return startFailed(err, stderr)
	}
	if err := a.Start(); err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 1
	}
	log.Info("tollgate started", "proxy", a.ProxyAddr(), "admin", a.AdminAddr(), "version", version)
	return serveUntilSignal(a, log)
}

// cmdControlPlane runs `tollgate cp`.
func cmdControlPlane(args []string, stderr io.Writer) int {
	path, ok := configFlag("cp", args, stderr)
	if !ok {
		return 2
	}
	if path == "" {
		path = "tollgate.yaml"
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	c, err := app.NewControlPlane(app.Options{ConfigPath: path, Logger: log})
	if err != nil {
		return startFailed(err, stderr)
	}
	if err := c.Start(); err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 1
	}
	log.Info("tollgate control plane started", "admin", c.AdminAddr(), "cluster", c.ClusterAddr(), "config_version", c.Version(), "version", version)
	return serveUntilSignal(c, log)
}

// cmdDataPlane runs `tollgate dp`.
func cmdDataPlane(args []string, stderr io.Writer) int {
	path, ok := configFlag("dp", args, stderr)
	if !ok {
		return 2
	}
	if path == "" {
		path = "tollgate.yaml"
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	d, err := app.NewDataPlane(app.Options{ConfigPath: path, Logger: log})
	if err != nil {
		return startFailed(err, stderr)
	}
	if err := d.Start(); err != nil {
		fmt.Fprintf(stderr, "tollgate: %v\n", err)
		return 1
	}
	log.Info("tollgate data plane started", "proxy", d.ProxyAddr(), "admin", d.AdminAddr(), "node", d.Status().NodeID, "version", version)
	return serveUntilSignal(d, log)
}

// startFailed prints why a server could not be made: one line per problem
// of the configuration file.
func startFailed(err error, stderr io.Writer) int {
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

// server is what run, cp and dp start.
type server interface {
	Reload() error
	ReopenLogs() error
	Shutdown(context.Context) error
	Errors() <-chan error
}

// serveUntilSignal reloads on SIGHUP and drains on SIGTERM or SIGINT.
func serveUntilSignal(a server, log *slog.Logger) int {
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

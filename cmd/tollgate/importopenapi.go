package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tollgate/tollgate/openapi"
)

// cmdImportOpenAPI prints the routes generated from an OpenAPI document.
// SPEC may come before or after the flags.
func cmdImportOpenAPI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import-openapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: tollgate import-openapi SPEC --service NAME [--base-path /v1]\n\n"+
			"SPEC is an OpenAPI 3 document, a file or an http(s) URL, in YAML or JSON.\n"+
			"The routes name SPEC as given: the gateway reads it relative to its working directory.\n\n")
		fs.PrintDefaults()
	}
	service := fs.String("service", "", "the service the routes send to (required)")
	basePath := fs.String("base-path", "", "a prefix the gateway serves the API's paths under, e.g. /v1")
	var specs []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		specs = append(specs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(specs) != 1:
		fmt.Fprintln(stderr, "tollgate import-openapi: name one OpenAPI document")
		fs.Usage()
		return 2
	case *service == "":
		fmt.Fprintln(stderr, "tollgate import-openapi: --service is required")
		fs.Usage()
		return 2
	case *basePath != "" && (!strings.HasPrefix(*basePath, "/") || strings.HasSuffix(*basePath, "/")):
		fmt.Fprintf(stderr, "tollgate import-openapi: --base-path %q must start with \"/\" and not end with one\n", *basePath)
		return 2
	}
	spec, err := openapi.Load(specs[0])
	if err != nil {
		fmt.Fprintf(stderr, "tollgate import-openapi: %v\n", err)
		return 1
	}
	if err := openapi.WriteRoutes(stdout, spec, openapi.ImportOptions{Service: *service, Spec: specs[0], BasePath: *basePath}); err != nil {
		fmt.Fprintf(stderr, "tollgate import-openapi: %v\n", err)
		return 1
	}
	return 0
}

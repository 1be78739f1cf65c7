package openapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// Limits on fetching a document over HTTP: a spec is configuration, so a
// slow or endless answer must fail the load rather than hang it.
const (
	fetchTimeout  = 10 * time.Second
	maxSpecBytes  = 32 << 20
	maxCacheFiles = 256
)

var httpClient = &http.Client{Timeout: fetchTimeout}

// IsURL reports whether location names a document fetched over HTTP(S)
// rather than a file.
func IsURL(location string) bool {
	return strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://")
}

// Load reads, resolves and validates the OpenAPI 3 document at location: a
// file path (relative paths start from the working directory) or an http(s)
// URL, in YAML or JSON. $refs to other files or URLs are followed, relative
// to the document.
//
// A file's document is kept and handed out again while neither it nor a
// file it refers to changes, so the many routes naming one spec, and the
// load-time check and the compilation of one configuration, parse it once.
// A URL is fetched on every call.
func Load(location string) (*Spec, error) {
	if location == "" {
		return nil, errors.New("no OpenAPI document named")
	}
	if IsURL(location) {
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid URL: %v", location, err)
		}
		s, _, err := load(location, u)
		return s, err
	}
	abs, err := filepath.Abs(location)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", location, err)
	}
	if s := cache.get(abs); s != nil {
		return s, nil
	}
	s, files, err := load(location, &url.URL{Path: filepath.ToSlash(abs)})
	if err != nil {
		return nil, err
	}
	cache.put(abs, s, files)
	return s, nil
}

// load reads the document at u and returns it with the files it was read
// from (for the cache to watch).
func load(location string, u *url.URL) (*Spec, []fileStamp, error) {
	var files []fileStamp
	read := func(_ *openapi3.Loader, ref *url.URL) ([]byte, error) {
		data, stamp, err := readLocation(ref)
		if err == nil && stamp.path != "" {
			files = append(files, stamp)
		}
		return data, err
	}
	data, err := read(nil, u)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %q: %v", location, unwrapPathError(err))
	}
	loader := openapi3.NewLoader()
	loader.IncludeOrigin = true // document order for routes and examples
	// Operators write the documents the gateway loads: references to other
	// files and URLs are theirs to make.
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = read
	doc, err := loader.LoadFromDataWithPath(data, u)
	if err != nil || doc.OpenAPI == "" {
		switch {
		case isSwagger2(data):
			return nil, nil, fmt.Errorf("%q: OpenAPI 2 (Swagger) documents are not supported; convert it to OpenAPI 3 first", location)
		case err != nil:
			return nil, nil, fmt.Errorf("%q is not a valid OpenAPI document: %v", location, oneLine(err))
		}
		return nil, nil, fmt.Errorf(`%q is not an OpenAPI 3 document (it has no "openapi: 3.x" field)`, location)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, nil, fmt.Errorf("%q is not a valid OpenAPI document: %v", location, oneLine(err))
	}
	s, err := newSpec(location, doc)
	if err != nil {
		return nil, nil, fmt.Errorf("%q: %v", location, err)
	}
	return s, files, nil
}

// isSwagger2 tells an OpenAPI 2 document, which has a top-level "swagger"
// key instead of "openapi".
func isSwagger2(data []byte) bool {
	text := strings.TrimSpace(string(data[:min(len(data), 64<<10)]))
	if strings.HasPrefix(text, "{") {
		return strings.Contains(text, `"swagger"`)
	}
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "swagger:") || strings.HasPrefix(line, `"swagger":`) {
			return true
		}
	}
	return false
}

// readLocation reads a file or fetches a URL, bounded in size.
func readLocation(u *url.URL) ([]byte, fileStamp, error) {
	switch u.Scheme {
	case "http", "https":
		return fetch(u)
	case "", "file":
	default:
		return nil, fileStamp{}, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	path := filepath.FromSlash(u.Path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, err
	}
	if info.IsDir() {
		return nil, fileStamp{}, errors.New("is a directory")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	if err != nil {
		return nil, fileStamp{}, err
	}
	if len(data) > maxSpecBytes {
		return nil, fileStamp{}, fmt.Errorf("larger than %d MiB", maxSpecBytes>>20)
	}
	return data, stampOf(path, info), nil
}

func fetch(u *url.URL) ([]byte, fileStamp, error) {
	resp, err := httpClient.Get(u.String())
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fileStamp{}, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSpecBytes+1))
	if err != nil {
		return nil, fileStamp{}, err
	}
	if len(data) > maxSpecBytes {
		return nil, fileStamp{}, fmt.Errorf("larger than %d MiB", maxSpecBytes>>20)
	}
	return data, fileStamp{}, nil
}

// unwrapPathError drops the operation and path os errors repeat, as the
// message names the file already.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// oneLine keeps the first line of a validation error: kin-openapi appends
// schema dumps after it.
func oneLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	path    string
	size    int64
	modTime time.Time
}

func stampOf(path string, info os.FileInfo) fileStamp {
	return fileStamp{path: path, size: info.Size(), modTime: info.ModTime()}
}

func (f fileStamp) current() bool {
	info, err := os.Stat(f.path)
	return err == nil && stampOf(f.path, info) == f
}

// cache keeps the documents loaded from files, by absolute path.
var cache = &specCache{entries: map[string]*cacheEntry{}}

type specCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	spec  *Spec
	files []fileStamp
}

func (c *specCache) get(abs string) *Spec {
	c.mu.Lock()
	e := c.entries[abs]
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	for _, f := range e.files {
		if !f.current() {
			return nil
		}
	}
	return e.spec
}

func (c *specCache) put(abs string, s *Spec, files []fileStamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCacheFiles {
		// Paths come from configurations, so this only bounds a process
		// whose configurations named many specs over its life.
		clear(c.entries)
	}
	c.entries[abs] = &cacheEntry{spec: s, files: files}
}

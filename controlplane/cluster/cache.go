package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files of a data plane's cache directory.
const (
	cacheSnapshot = "config.json"   // one snapshot message
	cacheJournal  = "deltas.ndjson" // the delta messages received after it
	cacheNodeID   = "node-id"
)

// minCompact is the journal size below which it is never folded into a
// new snapshot (a variable for tests).
var minCompact = 1 << 20

// cache keeps a data plane's last good configuration on disk, as the
// messages that made it: the last snapshot, as received, and a journal of
// the deltas received after it. A small change costs a rewrite of the
// journal, not of the whole configuration; the journal is folded into a new
// snapshot once it outgrows half the snapshot. Every file is replaced
// atomically (written beside, synced, renamed over), so a crash leaves the
// previous state, never a torn one.
type cache struct {
	dir          string
	snapshotSize int
	journal      [][]byte
	journalSize  int
}

func openCache(dir string) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster.cache_dir: %w", err)
	}
	return &cache{dir: dir}, nil
}

// nodeID returns the data plane's id, made once and kept in the cache
// directory so that it survives restarts.
func (c *cache) nodeID() (string, error) {
	path := filepath.Join(c.dir, cacheNodeID)
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if err := writeAtomic(path, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

// load returns the cached snapshot line (nil when there is none) and the
// journal's lines.
func (c *cache) load() (snapshot []byte, deltas [][]byte, err error) {
	snapshot, err = os.ReadFile(filepath.Join(c.dir, cacheSnapshot))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	c.snapshotSize = len(snapshot)
	j, err := os.ReadFile(filepath.Join(c.dir, cacheJournal))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for len(j) > 0 {
		end := bytes.IndexByte(j, '\n')
		if end < 0 {
			break // cannot happen with files written whole
		}
		deltas = append(deltas, j[:end+1:end+1])
		j = j[end+1:]
	}
	c.journal = deltas
	for _, d := range deltas {
		c.journalSize += len(d)
	}
	return snapshot, deltas, nil
}

// saveSnapshot makes line the cached snapshot, with an empty journal. The
// old journal goes first: a snapshot must never be read with the journal
// of another.
func (c *cache) saveSnapshot(line []byte) error {
	if err := os.Remove(filepath.Join(c.dir, cacheJournal)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	c.journal, c.journalSize = nil, 0
	if err := writeAtomic(filepath.Join(c.dir, cacheSnapshot), line); err != nil {
		return err
	}
	c.snapshotSize = len(line)
	return nil
}

// appendDeltas adds delta lines to the journal.
func (c *cache) appendDeltas(lines [][]byte) error {
	journal := append(c.journal[:len(c.journal):len(c.journal)], lines...)
	size := c.journalSize
	for _, l := range lines {
		size += len(l)
	}
	buf := make([]byte, 0, size)
	for _, l := range journal {
		buf = append(buf, l...)
	}
	if err := writeAtomic(filepath.Join(c.dir, cacheJournal), buf); err != nil {
		return err
	}
	c.journal, c.journalSize = journal, size
	return nil
}

// keepJournal forgets the journal's lines from the n-th on (they could not
// be applied); the next write leaves them out.
func (c *cache) keepJournal(n int) {
	c.journal = c.journal[:n:n]
	c.journalSize = 0
	for _, l := range c.journal {
		c.journalSize += len(l)
	}
}

// wantsCompaction says whether the journal should be folded into a new
// snapshot.
func (c *cache) wantsCompaction() bool {
	return c.journalSize > max(minCompact, c.snapshotSize/2)
}

// writeAtomic replaces path with data: written to a temporary file in the
// same directory, synced, renamed over path, and the directory synced.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

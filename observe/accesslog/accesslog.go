// Package accesslog writes one JSON line per request.
//
// Requests must never wait on the disk: Log formats the line into a pooled
// buffer and hands it over a buffered channel to a single writer goroutine,
// which batches lines in a bufio.Writer and flushes at least every
// FlushInterval. When the channel is full the line is dropped and counted
// (Dropped), so a slow disk costs log lines, not latency.
package accesslog

import (
	"bufio"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// FlushInterval bounds how long a logged line may sit in memory.
	FlushInterval = 100 * time.Millisecond
	// queueLines is how many lines may wait for the writer before Log drops.
	queueLines = 8192
	// writeBuffer batches lines into few write calls under load.
	writeBuffer = 64 << 10
	// maxPooledLine keeps one huge line (a long path) from pinning memory in the pool.
	maxPooledLine = 16 << 10
)

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("accesslog: logger closed")

// Logger writes access log lines. The zero value and a nil *Logger discard
// everything, as does New("off").
type Logger struct {
	lines   chan *[]byte
	pool    sync.Pool
	dropped atomic.Uint64
	closed  atomic.Bool

	path   string   // file destination; empty for stdout/stderr
	file   *os.File // owned by the writer goroutine once started
	owned  bool     // whether Close closes file
	out    *bufio.Writer
	err    error // first write error; read only after done is closed
	reopen chan chan error
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// New opens the destination named by logging.access_log: "stdout" (also the
// empty string), "stderr", "off", or a file path, opened for appending and
// created with mode 0644.
func New(dest string) (*Logger, error) {
	switch dest {
	case "off":
		return &Logger{}, nil
	case "", "stdout":
		return start(os.Stdout, "", false, queueLines), nil
	case "stderr":
		return start(os.Stderr, "", false, queueLines), nil
	}
	f, err := openFile(dest)
	if err != nil {
		return nil, err
	}
	return start(f, dest, true, queueLines), nil
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func start(f *os.File, path string, owned bool, queue int) *Logger {
	l := &Logger{
		lines:  make(chan *[]byte, queue),
		path:   path,
		file:   f,
		owned:  owned,
		out:    bufio.NewWriterSize(f, writeBuffer),
		reopen: make(chan chan error),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	l.pool.New = func() any {
		b := make([]byte, 0, 512)
		return &b
	}
	go l.run()
	return l
}

// Log queues one line for e. It never blocks: when the writer is behind the
// line is dropped and counted. Lines logged after Close are dropped too.
func (l *Logger) Log(e *Entry) {
	if l == nil || l.lines == nil {
		return
	}
	if l.closed.Load() {
		l.dropped.Add(1)
		return
	}
	bp := l.pool.Get().(*[]byte)
	*bp = appendEntry((*bp)[:0], e)
	select {
	case l.lines <- bp:
	default:
		l.dropped.Add(1)
		l.pool.Put(bp)
	}
}

// Dropped is the number of lines not written because the writer was behind
// or the logger was closed.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Reopen closes and reopens a file destination, for log rotation: rename
// the file, then call Reopen (on SIGHUP, for instance), and new lines go to a
// new file at the original path. Lines logged before Reopen end up in the old
// file. It does nothing for stdout, stderr and off.
func (l *Logger) Reopen() error {
	if l == nil || l.lines == nil || l.path == "" {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return ErrClosed
	}
}

// Close writes every queued line, flushes, and closes a file destination. It
// returns the first error met while writing, if any.
func (l *Logger) Close() error {
	if l == nil || l.lines == nil {
		return nil
	}
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
	})
	<-l.done
	return l.err
}

func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(FlushInterval)
	defer tick.Stop()
	for {
		select {
		case bp := <-l.lines:
			l.write(bp)
		case <-tick.C:
			l.flush()
		case reply := <-l.reopen:
			reply <- l.reopenFile()
		case <-l.quit:
			l.drain()
			l.flush()
			if l.owned {
				l.keepErr(l.file.Close())
			}
			return
		}
	}
}

// reopenFile drains what was logged before the call into the old file, then
// switches to a freshly opened one. On failure it keeps the old file.
func (l *Logger) reopenFile() error {
	l.drain()
	l.flush()
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	old := l.file
	l.file = f
	l.out.Reset(f)
	return old.Close()
}

// drain writes the lines already queued without waiting for more.
func (l *Logger) drain() {
	for {
		select {
		case bp := <-l.lines:
			l.write(bp)
		default:
			return
		}
	}
}

func (l *Logger) write(bp *[]byte) {
	_, err := l.out.Write(*bp)
	l.keepErr(err)
	if cap(*bp) <= maxPooledLine {
		l.pool.Put(bp)
	}
}

func (l *Logger) flush() {
	if l.out.Buffered() > 0 {
		l.keepErr(l.out.Flush())
	}
}

func (l *Logger) keepErr(err error) {
	if err == nil {
		return
	}
	if l.err == nil {
		l.err = err
	}
	// A failed bufio.Writer refuses every later write; start afresh so a
	// transient error (disk full for a while) does not end logging for good.
	l.out.Reset(l.file)
}

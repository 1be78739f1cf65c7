package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
)

// The feed's log keeps recent deltas for streams that lag behind and for
// data planes that reconnect; past these bounds, a stream that needs older
// entries reads the store instead.
const (
	maxLogEntries = 1024
	maxLogBytes   = 16 << 20
)

// feed turns the controller's announcements into stream messages. Each new
// version's ops are read from the store once and encoded once, then kept in
// a log that every stream reads from: a change costs one store read however
// many data planes there are, and a slow data plane holds up no other.
type feed struct {
	ctrl *controlplane.Controller
	st   store.Store
	log  *slog.Logger

	mu       sync.Mutex
	entities rawSet // at version
	version  int64
	epoch    string
	globals  []byte        // JSON of the globals in force
	seq      uint64        // sequence number of the newest entry (0: none yet)
	entries  []entry       // the log, oldest first, consecutive seqs
	bytes    int           // the log's size
	wake     chan struct{} // closed when an entry is added, then replaced
	snap     *encodedSnapshot

	snapMu sync.Mutex // one snapshot encoding at a time
}

// entry is one published delta.
type entry struct {
	seq      uint64
	from, to int64
	line     []byte
}

// position is where a stream is: the version its data plane has once it
// applied everything sent, and the last log entry sent.
type position struct {
	version int64
	seq     uint64
	epoch   string
}

type encodedSnapshot struct {
	pos  position
	line []byte
}

// newFeed loads the store's current state. The controller subscription is
// taken first, so that no change made while loading goes unannounced.
func newFeed(ctx context.Context, ctrl *controlplane.Controller, log *slog.Logger) (*feed, <-chan struct{}, func(), error) {
	changes, cancel := ctrl.Subscribe()
	f := &feed{ctrl: ctrl, st: ctrl.Store(), log: log, wake: make(chan struct{})}
	if err := f.reload(ctx); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return f, changes, cancel, nil
}

// reload reads every entity from the store, as at start or when the store
// turns out to be another one (its versions went back).
func (f *feed) reload(ctx context.Context) error {
	state, err := f.st.Current(ctx)
	if err != nil {
		return err
	}
	epoch, err := f.readEpoch(ctx, state.Version)
	if err != nil {
		return err
	}
	policies, redis, _ := f.ctrl.Globals()
	g, err := encodeGlobals(Globals{Policies: policies, Redis: redis})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entities, f.version, f.epoch, f.globals = newRawSet(state.Entities), state.Version, epoch, g
	// Streams whose position is not in the log any more start again from
	// their version and epoch: a different epoch sends them a snapshot.
	f.seq++
	f.entries, f.bytes, f.snap = nil, 0, nil
	f.signal()
	return nil
}

// readEpoch names the store's history: the time of its first version. A
// data plane's version means something only within the same epoch (a
// memory:// store restarted, or another database, counts versions anew).
func (f *feed) readEpoch(ctx context.Context, version int64) (string, error) {
	if version == 0 {
		return "", nil
	}
	vs, err := f.st.Versions(ctx, 2, 1)
	if err != nil || len(vs) == 0 {
		return "", err
	}
	return "v1@" + strconv.FormatInt(vs[0].At.UnixMicro(), 10), nil
}

// run publishes every change the controller announces until ctx ends.
func (f *feed) run(ctx context.Context, changes <-chan struct{}) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if err := f.catchUp(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("cluster: reading the store for data planes; retrying", "err", err.Error())
			retry.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-retry.C:
		}
	}
}

// catchUp publishes what changed since the last published version: the
// store's ops since then, and the globals when they differ.
func (f *feed) catchUp(ctx context.Context) error {
	policies, redis, _ := f.ctrl.Globals()
	g, err := encodeGlobals(Globals{Policies: policies, Redis: redis})
	if err != nil {
		return err
	}
	from := f.version // only this goroutine writes it
	ops, latest, err := f.st.Since(ctx, from)
	if err != nil {
		return err
	}
	if latest < from {
		f.log.Warn("cluster: the store's versions went back; sending data planes a snapshot", "was", from, "now", latest)
		return f.reload(ctx)
	}
	ops = upTo(ops, latest)
	globalsChanged := !bytes.Equal(g, f.globals)
	if latest == from && !globalsChanged {
		return nil
	}
	epoch := f.epoch
	if epoch == "" && latest > 0 {
		if epoch, err = f.readEpoch(ctx, latest); err != nil {
			return err
		}
	}
	var sendGlobals []byte
	if globalsChanged {
		sendGlobals = g
	}
	line := appendDelta(nil, from, latest, sendGlobals, ops)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.entities.apply(ops, from)
	f.version, f.globals, f.epoch = latest, g, epoch
	f.seq++
	f.entries = append(f.entries, entry{seq: f.seq, from: from, to: latest, line: line})
	f.bytes += len(line)
	for len(f.entries) > 1 && (len(f.entries) > maxLogEntries || f.bytes > maxLogBytes) {
		f.bytes -= len(f.entries[0].line)
		f.entries[0] = entry{}
		f.entries = f.entries[1:]
	}
	f.signal()
	return nil
}

// signal wakes the streams waiting for an entry. Called with f.mu held.
func (f *feed) signal() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// upTo drops ops of versions after latest: with PostgreSQL, a version
// committed between Since's two reads may show in its ops.
func upTo(ops []store.Op, latest int64) []store.Op {
	for i, op := range ops {
		if op.Version > latest {
			return ops[:i]
		}
	}
	return ops
}

// start returns the first lines of a stream for a data plane that holds
// version of epoch (0 and "" when it holds nothing), and the position the
// stream goes on from. A data plane of the same epoch gets a delta from
// its version (from the log, or the store's log for an older version),
// always with the globals; any other a snapshot.
func (f *feed) start(ctx context.Context, version int64, epoch string) ([][]byte, position, error) {
	f.mu.Lock()
	if version <= 0 || epoch == "" || epoch != f.epoch || version > f.version {
		f.mu.Unlock()
		return f.snapshot()
	}
	pos := position{f.version, f.seq, f.epoch}
	first := appendDelta(nil, version, version, f.globals, nil)
	if lines, ok := f.logAfterVersion(version); ok {
		f.mu.Unlock()
		return append([][]byte{first}, lines...), pos, nil
	}
	globals := f.globals
	f.mu.Unlock()
	ops, _, err := f.st.Since(ctx, version)
	if err != nil {
		return nil, position{}, err
	}
	return [][]byte{appendDelta(nil, version, pos.version, globals, upTo(ops, pos.version))}, pos, nil
}

// logAfterVersion returns the log's lines that take version to the
// feed's, when the log reaches back that far. Called with f.mu held.
func (f *feed) logAfterVersion(version int64) ([][]byte, bool) {
	if version == f.version {
		return nil, true
	}
	for i, e := range f.entries {
		if e.from <= version && e.to > version {
			lines := make([][]byte, 0, len(f.entries)-i)
			for _, e := range f.entries[i:] {
				lines = append(lines, e.line)
			}
			return lines, true
		}
	}
	return nil, false
}

// next returns the lines after pos and the new position; with nothing new
// it returns a channel closed when there is. behind is set when the log no
// longer holds what follows pos.
func (f *feed) next(pos position) (lines [][]byte, to position, wake <-chan struct{}, behind bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextLocked(pos)
}

// nextLocked is next with f.mu held.
func (f *feed) nextLocked(pos position) ([][]byte, position, <-chan struct{}, bool) {
	if pos.seq == f.seq {
		return nil, pos, f.wake, false
	}
	if len(f.entries) == 0 || f.entries[0].seq > pos.seq+1 {
		return nil, pos, nil, true
	}
	var lines [][]byte
	for _, e := range f.entries[pos.seq+1-f.entries[0].seq:] {
		lines = append(lines, e.line)
	}
	return lines, position{f.version, f.seq, pos.epoch}, nil, false
}

// snapshot returns a snapshot line and what follows it in the log. The
// encoded snapshot is kept and reused while the log reaches back to it,
// so data planes connecting together cost one encoding.
func (f *feed) snapshot() ([][]byte, position, error) {
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	f.mu.Lock()
	if s := f.snap; s != nil {
		lines, pos, _, behind := f.nextLocked(s.pos)
		if !behind {
			f.mu.Unlock()
			return append([][]byte{s.line}, lines...), pos, nil
		}
	}
	pos := position{f.version, f.seq, f.epoch}
	globals := f.globals
	entities := f.entities.values()
	f.mu.Unlock()

	store.SortEntities(entities)
	line := appendSnapshot(make([]byte, 0, bodyBytes(entities)), pos.version, pos.epoch, globals, entities)
	f.mu.Lock()
	f.snap = &encodedSnapshot{pos: pos, line: line}
	f.mu.Unlock()
	return [][]byte{line}, pos, nil
}

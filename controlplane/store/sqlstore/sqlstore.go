// Package sqlstore is the store on SQL databases: SQLite (modernc.org/sqlite,
// no cgo; the default, one file) and PostgreSQL (jackc/pgx; for clusters of
// control planes sharing one database).
//
// Entities live in one table as JSON text (kept byte for byte, so that a
// put of the same document is recognised as no change), and every change
// appends a row to versions and one row per op to ops. A change takes a
// database-wide write lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory
// lock), so versions are numbered without gaps even with several control
// planes writing to one PostgreSQL.
package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/controlplane/store"
)

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Store is a store on a SQL database.
type Store struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
}

// rebind turns the ? placeholders of a query into $1, $2... for PostgreSQL.
func (s *Store) rebind(q string) string {
	if s.dialect != postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// begin starts a write transaction that holds the database's write lock.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if s.dialect == postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7164105)"); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return tx, nil
}

// Apply implements store.Store.
func (s *Store) Apply(ctx context.Context, c store.Change) (store.Version, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return store.Version{}, err
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) + 1 FROM versions").Scan(&n); err != nil {
		return store.Version{}, err
	}
	cur, err := s.currentOf(ctx, tx, c.Ops)
	if err != nil {
		return store.Version{}, err
	}
	v := store.Version{N: n, At: s.now().UTC().Truncate(time.Microsecond), Actor: c.Actor, Action: c.Action}
	var logged []store.Op
	var touched []entityKey
	for _, op := range c.Ops {
		k := entityKey{op.Kind, op.Name}
		e, exists := cur[k]
		if op.Delete {
			if !exists {
				continue
			}
			delete(cur, k)
		} else {
			if exists && e.Source == op.Source && bytes.Equal(e.Body, op.Body) {
				continue
			}
			cur[k] = store.Entity{Source: op.Source, Body: op.Body}
		}
		touched = append(touched, k)
		op.Version = n
		logged = append(logged, op)
	}
	if len(logged) == 0 {
		return store.Version{}, nil
	}
	if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO versions (n, at, actor, action) VALUES (?, ?, ?, ?)"),
		n, v.At.UnixMicro(), c.Actor, c.Action); err != nil {
		return store.Version{}, err
	}
	if err := s.writeEntities(ctx, tx, n, touched, cur); err != nil {
		return store.Version{}, err
	}
	if err := s.writeOps(ctx, tx, n, logged); err != nil {
		return store.Version{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.Version{}, err
	}
	for _, op := range logged {
		op.Body = nil
		v.Ops = append(v.Ops, op)
	}
	return v, nil
}

type entityKey struct {
	kind store.Kind
	name string
}

// currentOf reads the current state of the entities ops touch: one query
// per entity for a small change, the whole of each touched kind for a
// large one.
func (s *Store) currentOf(ctx context.Context, tx *sql.Tx, ops []store.Op) (map[entityKey]store.Entity, error) {
	cur := make(map[entityKey]store.Entity, len(ops))
	if len(ops) <= 32 {
		for _, op := range ops {
			var e store.Entity
			var body string
			err := tx.QueryRowContext(ctx, s.rebind("SELECT source, body FROM entities WHERE kind = ? AND name = ?"),
				string(op.Kind), op.Name).Scan(&e.Source, &body)
			e.Body = []byte(body)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, err
			default:
				cur[entityKey{op.Kind, op.Name}] = e
			}
		}
		return cur, nil
	}
	kinds := map[store.Kind]bool{}
	for _, op := range ops {
		kinds[op.Kind] = true
	}
	for kind := range kinds {
		rows, err := tx.QueryContext(ctx, s.rebind("SELECT name, source, body FROM entities WHERE kind = ?"), string(kind))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var name, body string
			var e store.Entity
			if err := rows.Scan(&name, &e.Source, &body); err != nil {
				rows.Close()
				return nil, err
			}
			e.Body = []byte(body)
			cur[entityKey{kind, name}] = e
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// batch is how many rows one INSERT carries: few round trips for a large
// change, well under SQLite's limit of bound parameters.
const batch = 400

// writeEntities makes each touched entity what the change left it: the
// entry in final, or deleted when it has none there.
func (s *Store) writeEntities(ctx context.Context, tx *sql.Tx, n int64, touched []entityKey, final map[entityKey]store.Entity) error {
	done := make(map[entityKey]bool, len(touched))
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := "INSERT INTO entities (kind, name, source, body, version) VALUES " + rows(len(args)/5, 5) +
			" ON CONFLICT (kind, name) DO UPDATE SET source = excluded.source, body = excluded.body, version = excluded.version"
		_, err := tx.ExecContext(ctx, s.rebind(q), args...)
		args = args[:0]
		return err
	}
	for _, k := range touched {
		if done[k] {
			continue
		}
		done[k] = true
		e, ok := final[k]
		if !ok {
			if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM entities WHERE kind = ? AND name = ?"), string(k.kind), k.name); err != nil {
				return err
			}
			continue
		}
		args = append(args, string(k.kind), k.name, string(e.Source), string(e.Body), n)
		if len(args) >= batch*5 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (s *Store) writeOps(ctx context.Context, tx *sql.Tx, n int64, ops []store.Op) error {
	for start := 0; start < len(ops); start += batch {
		chunk := ops[start:min(start+batch, len(ops))]
		args := make([]any, 0, len(chunk)*7)
		for i, op := range chunk {
			var body any
			if !op.Delete {
				body = string(op.Body)
			}
			args = append(args, n, start+i, string(op.Kind), op.Name, boolInt(op.Delete), string(op.Source), body)
		}
		q := "INSERT INTO ops (version, seq, kind, name, deleted, source, body) VALUES " + rows(len(chunk), 7)
		if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
			return err
		}
	}
	return nil
}

// rows returns "(?, ?), (?, ?)" for n rows of cols values.
func rows(n, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, kind store.Kind, name string) (store.Entity, error) {
	e := store.Entity{Kind: kind, Name: name}
	var body string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT source, body, version FROM entities WHERE kind = ? AND name = ?"),
		string(kind), name).Scan(&e.Source, &body, &e.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Entity{}, store.ErrNotFound
	}
	e.Body = []byte(body)
	return e, err
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind store.Kind) ([]store.Entity, error) {
	return s.queryEntities(ctx, "SELECT kind, name, source, body, version FROM entities WHERE kind = ? ORDER BY name", string(kind))
}

// Current implements store.Store.
func (s *Store) Current(ctx context.Context) (store.State, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.dialect == postgres})
	if err != nil {
		return store.State{}, err
	}
	defer tx.Rollback()
	var st store.State
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM versions").Scan(&st.Version); err != nil {
		return st, err
	}
	st.Entities, err = scanEntities(tx.QueryContext(ctx, "SELECT kind, name, source, body, version FROM entities"))
	store.SortEntities(st.Entities)
	return st, err
}

// At implements store.Store.
func (s *Store) At(ctx context.Context, n int64) (store.State, error) {
	var latest int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM versions").Scan(&latest); err != nil {
		return store.State{}, err
	}
	if n < 0 || n > latest {
		return store.State{}, store.ErrNoVersion
	}
	es, err := s.queryEntities(ctx, `SELECT kind, name, source, body, version FROM (
		SELECT kind, name, deleted, source, body, version,
			ROW_NUMBER() OVER (PARTITION BY kind, name ORDER BY version DESC, seq DESC) AS rn
		FROM ops WHERE version <= ?) last
		WHERE rn = 1 AND deleted = 0`, n)
	store.SortEntities(es)
	return store.State{Version: n, Entities: es}, err
}

// Since implements store.Store.
func (s *Store) Since(ctx context.Context, n int64) ([]store.Op, int64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.dialect == postgres})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var latest int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM versions").Scan(&latest); err != nil {
		return nil, 0, err
	}
	rs, err := tx.QueryContext(ctx, s.rebind(
		"SELECT version, kind, name, deleted, source, body FROM ops WHERE version > ? ORDER BY version, seq"), n)
	ops, err := scanOps(rs, err, true)
	return ops, latest, err
}

// Versions implements store.Store.
func (s *Store) Versions(ctx context.Context, before int64, limit int) ([]store.Version, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rs, err := s.db.QueryContext(ctx, s.rebind("SELECT n, at, actor, action FROM versions WHERE n < ? ORDER BY n DESC LIMIT ?"), before, limit)
	if err != nil {
		return nil, err
	}
	var vs []store.Version
	for rs.Next() {
		var v store.Version
		var at int64
		if err := rs.Scan(&v.N, &at, &v.Actor, &v.Action); err != nil {
			rs.Close()
			return nil, err
		}
		v.At = time.UnixMicro(at).UTC()
		vs = append(vs, v)
	}
	if err := rs.Close(); err != nil || len(vs) == 0 {
		return vs, err
	}
	rs, err = s.db.QueryContext(ctx, s.rebind(
		"SELECT version, kind, name, deleted, source, NULL FROM ops WHERE version >= ? AND version <= ? ORDER BY version, seq"),
		vs[len(vs)-1].N, vs[0].N)
	ops, err := scanOps(rs, err, false)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		i := int(vs[0].N - op.Version) // vs is newest first, without gaps
		vs[i].Ops = append(vs[i].Ops, op)
	}
	return vs, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) queryEntities(ctx context.Context, q string, args ...any) ([]store.Entity, error) {
	return scanEntities(s.db.QueryContext(ctx, s.rebind(q), args...))
}

func scanEntities(rs *sql.Rows, err error) ([]store.Entity, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []store.Entity
	for rs.Next() {
		var e store.Entity
		var body string
		if err := rs.Scan(&e.Kind, &e.Name, &e.Source, &body, &e.Version); err != nil {
			return nil, err
		}
		e.Body = []byte(body)
		out = append(out, e)
	}
	return out, rs.Err()
}

func scanOps(rs *sql.Rows, err error, withBody bool) ([]store.Op, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []store.Op
	for rs.Next() {
		var op store.Op
		var deleted int
		var body sql.NullString
		if err := rs.Scan(&op.Version, &op.Kind, &op.Name, &deleted, &op.Source, &body); err != nil {
			return nil, err
		}
		op.Delete = deleted != 0
		if withBody && body.Valid {
			op.Body = []byte(body.String)
		}
		out = append(out, op)
	}
	return out, rs.Err()
}

// errorf wraps a database error with what was being done.
func errorf(what string, err error) error { return fmt.Errorf("store: %s: %w", what, err) }

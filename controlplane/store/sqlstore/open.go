package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver, without cgo
)

// OpenSQLite opens (creating it when missing) the SQLite database file at
// path and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	// WAL lets readers run beside the writer; _txlock=immediate takes the
	// write lock when a transaction begins, so two writers queue on
	// busy_timeout instead of failing on a lock upgrade.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	return open(ctx, db, sqlite)
}

// OpenPostgres opens the PostgreSQL database at url (postgres://...) and
// brings its schema up to date.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return open(ctx, db, postgres)
}

// Open opens the store a URL names: sqlite://FILE or postgres://...
// (memory:// is the memory package's).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		return OpenSQLite(ctx, strings.TrimPrefix(rawURL, "sqlite://"))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return OpenPostgres(ctx, rawURL)
	}
	u, _ := url.Parse(rawURL)
	scheme := ""
	if u != nil {
		scheme = u.Scheme
	}
	return nil, fmt.Errorf("store: unsupported store URL scheme %q (use sqlite:// or postgres://)", scheme)
}

func open(ctx context.Context, db *sql.DB, d dialect) (*Store, error) {
	s := &Store{db: db, dialect: d, now: time.Now}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, errorf("connect", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, errorf("migrate", err)
	}
	return s, nil
}

// migrations are applied in order, each once; a database records how many
// it has had. Append, never edit: databases in the field have run them.
var migrations = []string{
	`CREATE TABLE versions (
		n BIGINT PRIMARY KEY,
		at BIGINT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL
	);
	CREATE TABLE ops (
		version BIGINT NOT NULL,
		seq INTEGER NOT NULL,
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		deleted INTEGER NOT NULL,
		source TEXT NOT NULL,
		body TEXT,
		PRIMARY KEY (version, seq)
	);
	CREATE INDEX ops_entity ON ops (kind, name, version);
	CREATE TABLE entities (
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		source TEXT NOT NULL,
		body TEXT NOT NULL,
		version BIGINT NOT NULL,
		PRIMARY KEY (kind, name)
	)`,
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); err != nil {
		return err
	}
	var have int
	err = tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&have)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("the database has schema version %d, newer than this build knows (%d)", have, len(migrations))
	}
	for i := have; i < len(migrations); i++ {
		for _, stmt := range strings.Split(migrations[i], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
	}
	if have < len(migrations) {
		if _, err := tx.ExecContext(ctx, "DELETE FROM schema_version"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO schema_version (version) VALUES (?)"), len(migrations)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

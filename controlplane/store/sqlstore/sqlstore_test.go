package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/storetest"
)

func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "tollgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSQLiteKeepsDataAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, store.Change{Actor: "a", Ops: []store.Op{{Kind: store.Routes, Name: "r", Source: store.SourceAPI, Body: []byte(`{"x":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, path) // migrations run again: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.Get(ctx, store.Routes, "r")
	if err != nil || string(e.Body) != `{"x":1}` || e.Version != 1 {
		t.Fatalf("after reopen: %+v, %v", e, err)
	}
}

// postgresURL returns the test database's URL, skipping the test when no
// server answers (failing instead under CI).
func postgresURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("TOLLGATE_TEST_PG")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s does not answer: %v", pu.Host, err)
		}
		t.Skipf("PostgreSQL at %s does not answer (%v); set TOLLGATE_TEST_PG", pu.Host, err)
	}
	c.Close()
	return u
}

// freshSchema gives each test a schema of its own, dropped at the end.
func freshSchema(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := OpenPostgres(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "tollgate_test_" + hex.EncodeToString(b)
	if _, err := admin.db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	pu, _ := url.Parse(base)
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}

func TestPostgresStore(t *testing.T) {
	base := postgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := OpenPostgres(context.Background(), freshSchema(t, base))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenRefusesUnknownScheme(t *testing.T) {
	if _, err := Open(context.Background(), "mysql://x"); err == nil {
		t.Error("mysql:// accepted")
	}
}

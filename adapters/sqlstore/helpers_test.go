package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// Servers used by the tests (override with the env variables).
const (
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQLDSN    = "mysql://root@127.0.0.1:3306/test"
)

// serviceUnavailable skips t (or fails it when EMAILCRM_REQUIRE_SERVICES=1).
func serviceUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("EMAILCRM_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (EMAILCRM_REQUIRE_SERVICES=1) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping (set EMAILCRM_REQUIRE_SERVICES=1 to fail instead): %v", what, err)
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t_" + hex.EncodeToString(b[:])
}

// sqliteURL returns the URL of a new SQLite file.
func sqliteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "cases.db")
}

// postgresURL creates a schema for this test run, dropped at cleanup, and
// returns a URL whose search_path selects it.
func postgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("EMAILCRM_TEST_POSTGRES_DSN")
	if base == "" {
		base = defaultPostgresDSN
	}
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		serviceUnavailable(t, "PostgreSQL at "+base, err)
	}
	schema := randomName()
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// mysqlURL creates a database for this test run, dropped at cleanup.
func mysqlURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("EMAILCRM_TEST_MYSQL_DSN")
	if base == "" {
		base = defaultMySQLDSN
	}
	u, err := url.Parse(base)
	require.NoError(t, err)
	_, dsn, err := sqlstore.DSN(u)
	require.NoError(t, err)
	admin, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		serviceUnavailable(t, "MySQL/MariaDB at "+base, err)
	}
	name := randomName()
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
		admin.Close()
	})
	u.Path = "/" + name
	return u.String()
}

// dialects lists the three dialects with a function making a fresh
// database URL for each.
var dialects = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", sqliteURL},
	{"postgres", postgresURL},
	{"mysql", mysqlURL},
}

// openURL opens a store on rawURL, closed at cleanup.
func openURL(t testing.TB, rawURL string, opts *sqlstore.Options) *mailcase.Store {
	t.Helper()
	if opts == nil {
		opts = &sqlstore.Options{}
	}
	if opts.Store == nil {
		opts.Store = &mailcase.StoreOptions{RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	}
	s, err := sqlstore.OpenURL(context.Background(), rawURL, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

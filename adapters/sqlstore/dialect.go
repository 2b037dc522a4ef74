package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect names the SQL dialect of a database. It selects the embedded
// migrations, the placeholder style and the few statements that differ.
type Dialect string

// Supported dialects.
const (
	// SQLite through modernc.org/sqlite (pure Go, driver name "sqlite").
	SQLite Dialect = "sqlite"
	// Postgres through github.com/jackc/pgx/v5/stdlib (driver name "pgx").
	Postgres Dialect = "postgres"
	// MySQL and MariaDB through github.com/go-sql-driver/mysql (driver name
	// "mysql").
	MySQL Dialect = "mysql"
)

func (d Dialect) valid() bool { return d == SQLite || d == Postgres || d == MySQL }

// driverName is the database/sql driver name for the dialect.
func (d Dialect) driverName() string {
	switch d {
	case Postgres:
		return "pgx"
	case MySQL:
		return "mysql"
	}
	return "sqlite"
}

// rebind rewrites ? placeholders to $n for PostgreSQL. Queries are
// constants of this package (they never carry a literal question mark).
func (d Dialect) rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// insertIgnore returns an INSERT of cols into table that does nothing
// (zero rows affected) when the row's unique key conflict column exists.
func (d Dialect) insertIgnore(table, conflict string, cols ...string) string {
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + placeholders(len(cols)) + ")"
	if d == MySQL {
		return q + " ON DUPLICATE KEY UPDATE " + conflict + " = " + conflict
	}
	return q + " ON CONFLICT (" + conflict + ") DO NOTHING"
}

// upsert returns an INSERT of cols into table that overwrites update
// columns when the conflict column exists.
func (d Dialect) upsert(table, conflict string, cols []string, update ...string) string {
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + placeholders(len(cols)) + ")"
	set := make([]string, len(update))
	for i, c := range update {
		if d == MySQL {
			set[i] = c + " = VALUES(" + c + ")"
		} else {
			set[i] = c + " = excluded." + c
		}
	}
	if d == MySQL {
		return q + " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	return q + " ON CONFLICT (" + conflict + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// nowMicros is an SQL expression for the database clock in Unix
// microseconds (leases use the database clock so that workers on machines
// with skewed clocks agree).
func (d Dialect) nowMicros() string {
	switch d {
	case Postgres:
		return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
	case MySQL:
		// From UTC_TIMESTAMP, not NOW: NOW is in the session's time zone,
		// whose clock repeats an hour when daylight saving time ends.
		return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// valuesRows returns n groups of cols placeholders: (?, ?), (?, ?).
func valuesRows(n, cols int) string {
	g := "(" + placeholders(cols) + ")"
	return strings.Repeat(g+", ", n-1) + g
}

// ParseDialect returns the dialect named s ("sqlite", "postgres" or
// "postgresql", "mysql" or "mariadb").
func ParseDialect(s string) (Dialect, error) {
	switch strings.ToLower(s) {
	case "sqlite", "sqlite3":
		return SQLite, nil
	case "postgres", "postgresql", "pgx":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	}
	return "", fmt.Errorf("sqlstore: unknown dialect %q", s)
}

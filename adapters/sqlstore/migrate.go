package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the versioned schema of each dialect:
// migrations/<dialect>/NNNN_name.sql, applied in order.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations returns the dialect's migrations in version order.
func loadMigrations(d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	ents, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("bad migration file name %s", name)
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(name, ".sql"), stmts: splitSQL(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	// Versions are unique and increasing; gaps are allowed, so branches
	// that each add a numbered migration can merge in any order (a
	// database gets every version it has not applied, see migrateConn).
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations of %s: version %d given twice", d, out[i].version)
		}
	}
	return out, nil
}

// splitSQL splits a migration file into statements: comment lines are
// dropped and statements end with ";" at the end of a line.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// LatestVersion returns the newest schema version this package knows for
// dialect d.
func LatestVersion(d Dialect) int {
	ms, err := loadMigrations(d)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

const createVersionsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  applied_at BIGINT NOT NULL
)`

// ErrSchemaTooNew is returned when a database was migrated by a newer
// version of this package than the running one.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this program")

// Migrate brings the schema of db up to version target (0 means the
// latest) and returns the versions before and after. It holds a lock while
// it works, so two processes opening the same database at once are safe:
// pg_advisory_lock on PostgreSQL (per schema), GET_LOCK on MySQL (per
// database) and a BEGIN IMMEDIATE transaction on SQLite. On PostgreSQL and
// SQLite each version is applied in one transaction; MySQL commits DDL
// implicitly, so a version interrupted there must be repaired by hand.
// OpenStore calls Migrate unless Options.NoMigrate is set.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, target int) (from, to int, err error) {
	if !d.valid() {
		return 0, 0, fmt.Errorf("sqlstore: unknown dialect %q", d)
	}
	ms, err := loadMigrations(d)
	if err != nil {
		return 0, 0, err
	}
	if latest := ms[len(ms)-1].version; target <= 0 || target > latest {
		target = latest
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()

	switch d {
	case Postgres:
		const key = `hashtext(COALESCE(current_schema(), '') || '.emailcrm_sqlstore_migrate')`
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
			return 0, 0, err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`) //nolint:errcheck // released with the session anyway
	case MySQL:
		var got sql.NullInt64
		const name = `LEFT(CONCAT('emailcrm_migrate.', COALESCE(DATABASE(), '')), 64)`
		if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+name+`, 120)`).Scan(&got); err != nil {
			return 0, 0, err
		}
		if got.Int64 != 1 {
			return 0, 0, errors.New("sqlstore: timed out waiting for the migration lock (GET_LOCK)")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(`+name+`)`) //nolint:errcheck // released with the session anyway
	case SQLite:
		// WAL is a persistent property of the file; set it before taking
		// the write lock (it cannot change inside a transaction).
		if _, err := conn.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
			return 0, 0, err
		}
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			return 0, 0, err
		}
		committed := false
		defer func() {
			if !committed {
				conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) //nolint:errcheck // best effort after a failure
			}
		}()
		from, to, err = migrateConn(ctx, conn, d, ms, target, false)
		if err != nil {
			return from, from, err
		}
		if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
			return from, from, err
		}
		committed = true
		return from, to, nil
	}
	return migrateConn(ctx, conn, d, ms, target, true)
}

// migrateConn applies the pending migrations on conn, which holds the
// migration lock. ownTx says whether each version gets its own
// transaction (false on SQLite, where the caller's transaction covers all).
func migrateConn(ctx context.Context, conn *sql.Conn, d Dialect, ms []migration, target int, ownTx bool) (from, to int, err error) {
	if _, err := conn.ExecContext(ctx, createVersionsTable); err != nil {
		return 0, 0, err
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return 0, 0, err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return 0, 0, err
		}
		applied[v] = true
		from = max(from, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if latest := ms[len(ms)-1].version; from > latest {
		return from, from, fmt.Errorf("%w (database v%d, program v%d)", ErrSchemaTooNew, from, latest)
	}
	to = from
	for _, m := range ms {
		if m.version > target || applied[m.version] {
			continue
		}
		if err := applyMigration(ctx, conn, d, m, ownTx); err != nil {
			return from, to, fmt.Errorf("migration %s: %w", m.name, err)
		}
		to = max(to, m.version)
	}
	return from, to, nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, d Dialect, m migration, ownTx bool) error {
	record := d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	now := time.Now().UnixNano()
	if !ownTx || d == MySQL { // MySQL DDL commits implicitly: no transaction to speak of
		for _, s := range m.stmts {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		_, err := conn.ExecContext(ctx, record, m.version, m.name, now)
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, s := range m.stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, record, m.version, m.name, now); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the schema version of db (0 for an empty database).
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var cur sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&cur); err != nil {
		return 0, err
	}
	return int(cur.Int64), nil
}

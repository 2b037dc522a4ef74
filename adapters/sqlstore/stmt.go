package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps prepared statements for SQLite, where preparing (parsing
// and planning) costs more than running most of these statements. The
// PostgreSQL driver (pgx) caches statements per connection by itself and
// MySQL statements are interpolated by the driver, so they run directly.
// database/sql prepares a cached statement once per connection and reuses
// it inside transactions (Tx.StmtContext).
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache (IN lists and multi-row inserts vary in
// length; beyond the bound they are prepared each time).
const maxCachedStmts = 512

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[query]; ok { // lost a race: keep one
		st.Close()
		return old, nil
	}
	if len(c.m) >= maxCachedStmts {
		return st, nil // caller uses it once; closed with the database
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// runner runs statements on the pool (tx nil) or in tx, through the
// statement cache when there is one.
type runner struct {
	s    *store
	tx   *sql.Tx
	long bool // a scan over many rows (see stmtCtx)
}

func (s *store) on(tx *sql.Tx) runner { return runner{s: s, tx: tx} }

// scan returns the runner of list queries on the pool, which may read many
// rows and stay interruptible by their context on SQLite.
func (s *store) scan() runner { return runner{s: s, long: true} }

// stmtCtx returns the context a statement runs with. For every statement
// with a cancellable context, modernc.org/sqlite starts a goroutine that
// interrupts it when the context ends: two goroutine switches per
// statement, which cost filing more than many of its statements. On
// SQLite, the point lookups and writes of filing (microseconds each; lock
// waits are bounded by the busy timeout) run detached from cancellation
// once ctx is checked live; list scans keep ctx. A context already ended
// is passed on, so the call fails with its error.
func (r runner) stmtCtx(ctx context.Context) context.Context {
	if r.s.d != SQLite || r.long || ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (r runner) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := r.s.stmts.get(ctx, query)
	if err != nil || r.tx == nil {
		return st, err
	}
	return r.tx.StmtContext(ctx, st), nil
}

func (r runner) ExecContext(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	r.s.statements.Add(1)
	ctx = r.stmtCtx(ctx)
	if r.tx == nil {
		defer func() { r.s.noteErr(err) }()
	}
	if r.s.stmts == nil {
		if r.tx != nil {
			return r.tx.ExecContext(ctx, query, args...)
		}
		return r.s.db.ExecContext(ctx, query, args...)
	}
	st, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (r runner) QueryContext(ctx context.Context, query string, args ...any) (rows *sql.Rows, err error) {
	r.s.statements.Add(1)
	ctx = r.stmtCtx(ctx)
	if r.tx == nil {
		defer func() { r.s.noteErr(err) }()
	}
	if r.s.stmts == nil {
		if r.tx != nil {
			return r.tx.QueryContext(ctx, query, args...)
		}
		return r.s.db.QueryContext(ctx, query, args...)
	}
	st, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext returns a row; a preparation error surfaces at Scan.
func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	r.s.statements.Add(1)
	ctx = r.stmtCtx(ctx)
	if r.s.stmts == nil {
		if r.tx != nil {
			return r.tx.QueryRowContext(ctx, query, args...)
		}
		return r.s.db.QueryRowContext(ctx, query, args...)
	}
	st, err := r.stmt(ctx, query)
	if err != nil {
		// Let database/sql report the preparation error through Scan.
		if r.tx != nil {
			return r.tx.QueryRowContext(ctx, query, args...)
		}
		return r.s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// matched reports whether the conditional UPDATE that returned res found
// its row. MySQL and MariaDB count the rows an UPDATE changed, not those it
// matched: a row set to the values it holds (an updated_at written twice
// in one tick of the clock, a lease renewed in one microsecond of the
// database clock) counts 0. So on MySQL a 0 is judged again by check, a
// SELECT of the UPDATE's row under the same condition: with forUpdate (in
// a transaction) it is a locking read, which sees the newest committed row
// as the UPDATE did. The store does not open MySQL connections with
// clientFoundRows, which would make found rows the count: its INSERT ...
// ON DUPLICATE KEY UPDATE k = k (Dialect.insertIgnore) counts a row that
// exists as 0 only without it.
func (s *store) matched(ctx context.Context, r runner, res sql.Result, check string, args ...any) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil || n > 0 || s.d != MySQL {
		return n > 0, err
	}
	var one int
	err = r.QueryRowContext(ctx, s.d.rebind(check), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
	"modernc.org/sqlite"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Options configures a store. A nil *Options means defaults.
type Options struct {
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time for record timestamps; nil means
	// time.Now. Leases always use the database clock.
	Now func() time.Time
	// URLBase prefixes case IDs in CaseURL; "" means "sqlstore://cases/".
	URLBase string
	// MaxBatch bounds the write operations committed in one transaction
	// (group commit); 0 means 64, 1 disables group commit.
	MaxBatch int
	// BatchWait is how long a committer lingers for more operations before
	// committing a batch that is not full; 0 means no lingering (batches
	// form from what queues up during the previous commit).
	BatchWait time.Duration
	// Committers is the number of concurrent group-commit transactions; 0
	// means 1 for SQLite (one writer at a time anyway) and 4 otherwise.
	Committers int
	// TxTimeout bounds one batch transaction; 0 means 60s.
	TxTimeout time.Duration
	// NoMigrate skips the schema migration at open; the store then
	// requires the database to be at the latest version already.
	NoMigrate bool
	// Store configures the portable layer (retries, timeouts, and
	// DiscardRaw: by default the original raw mail of every filed mail is
	// kept, compressed when that pays, for `mailcase reparse`; the URL
	// parameter keep_raw=false sets DiscardRaw); its Logger defaults to
	// Logger.
	Store *mailcase.StoreOptions
}

func (o *Options) withDefaults(d Dialect) Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.URLBase == "" {
		r.URLBase = "sqlstore://cases/"
	}
	if r.MaxBatch <= 0 {
		r.MaxBatch = 64
	}
	if r.Committers <= 0 {
		r.Committers = 4
		if d == SQLite {
			r.Committers = 1
		}
	}
	if r.TxTimeout <= 0 {
		r.TxTimeout = 60 * time.Second
	}
	so := mailcase.StoreOptions{}
	if r.Store != nil {
		so = *r.Store
	}
	if so.Logger == nil {
		so.Logger = r.Logger
	}
	r.Store = &so
	return r
}

// OpenStore returns a store over db, an open database of the given
// dialect, after migrating its schema (see Migrate). The caller keeps
// ownership of db: closing the store does not close it. For SQLite, open
// db with the DSN SQLiteDSN returns (WAL, synchronous=FULL, busy timeout,
// foreign keys, immediate transactions); for MySQL use a DSN with
// parseTime=false (the default).
func OpenStore(ctx context.Context, db *sql.DB, dialect Dialect, opts *Options) (*mailcase.Store, error) {
	d, err := open(ctx, db, dialect, opts, false)
	if err != nil {
		return nil, err
	}
	return mailcase.NewStore(d, d.opts.Store), nil
}

func open(ctx context.Context, db *sql.DB, dialect Dialect, opts *Options, ownDB bool) (*store, error) {
	return openIdle(ctx, db, dialect, opts, ownDB, 0)
}

func openIdle(ctx context.Context, db *sql.DB, dialect Dialect, opts *Options, ownDB bool, maxIdle int) (*store, error) {
	const op = "OpenStore"
	if db == nil || !dialect.valid() {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, fmt.Errorf("sqlstore: need a database and a dialect (got %q)", dialect))
	}
	o := opts.withDefaults(dialect)
	fail := func(err error) (*store, error) {
		if ownDB {
			db.Close()
		}
		return nil, mailcase.NewError(classifyOpen(err), op, fmt.Errorf("sqlstore: open %s database: %w", dialect, err))
	}
	// Opening races with other processes opening the same database (a new
	// SQLite file switching to WAL, a migration in progress): transient
	// failures are retried briefly.
	if err := retryOpen(ctx, func() error { return db.PingContext(ctx) }); err != nil {
		return fail(err)
	}
	if o.NoMigrate {
		v, err := SchemaVersion(ctx, db)
		if err != nil {
			return fail(err)
		}
		if v != LatestVersion(dialect) {
			return fail(fmt.Errorf("schema is at version %d, this program needs %d (open without NoMigrate to upgrade)", v, LatestVersion(dialect)))
		}
	} else if err := retryOpen(ctx, func() error { _, _, err := Migrate(ctx, db, dialect, 0); return err }); err != nil {
		return fail(err)
	}
	if dialect == SQLite {
		// Fail at open, not at the first mail, when the file cannot be
		// written (read-only file or directory, full disk).
		if err := checkWritable(ctx, db); err != nil {
			return fail(err)
		}
	}
	var txOpts *sql.TxOptions
	if dialect == MySQL {
		// READ COMMITTED: a statement after waiting on a unique key sees the
		// row the other transaction committed, and InnoDB takes no gap locks.
		txOpts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	s := &store{
		db: db, d: dialect, ownDB: ownDB, now: o.Now, urlBase: o.URLBase, log: o.Logger,
		opts: o, q: buildQueries(dialect), rq: buildRecordQueries(dialect), maxIdle: maxIdle,
	}
	if dialect == SQLite {
		s.stmts = &stmtCache{db: db, m: map[string]*sql.Stmt{}}
	}
	s.w = newCommitter(db, txOpts, o.Committers, o.MaxBatch, o.BatchWait, o.TxTimeout, o.Logger.With("component", "sqlstore"), s.noteErr)
	return s, nil
}

// retryOpen runs f up to 6 times while it fails with a transient error
// (Unavailable: SQLITE_BUSY, a lock wait), backing off from 50ms.
func retryOpen(ctx context.Context, f func() error) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt == 6 || classify(err) != driver.Unavailable || connectionLost(err) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}

func classifyOpen(err error) driver.ErrorCode {
	switch c := classify(err); c {
	case driver.Unknown:
		return driver.FailedPrecondition
	default:
		return c
	}
}

// checkWritable performs a write that changes nothing visible.
func checkWritable(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `UPDATE schema_migrations SET applied_at = applied_at WHERE version = 1`)
	return err
}

// SQLiteDSN returns the modernc.org/sqlite DSN sqlstore uses for the file
// at path: WAL journal, synchronous=FULL (every commit durable), a 10s busy
// timeout, foreign keys on and BEGIN IMMEDIATE transactions.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// store implements driver.CaseStore and the optional interfaces over
// database/sql. It is safe for concurrent use: reads go to the pool, writes
// go through the group committer.
type store struct {
	db      *sql.DB
	d       Dialect
	ownDB   bool
	now     func() time.Time
	urlBase string
	log     *slog.Logger
	opts    Options
	q       *queries
	rq      *recordQueries
	w       *committer
	stmts   *stmtCache // SQLite only; nil otherwise
	maxIdle int        // idle connections of an owned pool (see noteErr)

	flaters    sync.Pool    // *flate.Writer at BestSpeed, reused (see deflate)
	hufFlaters sync.Pool    // klauspost *flate.Writer, Huffman codes only (see deflate)
	contacts   addrCache    // committed contact ID -> address
	statements atomic.Int64 // statements run (see CommitStats.Statements)

	// slaClaimHook, set by tests only, runs in ClaimSLAAlerts between the
	// read of the candidates and their updates.
	slaClaimHook func()
}

// addrCache maps the IDs of committed contacts to their addresses. It is
// bounded: when full it starts over. An address changes only through
// UpdateRecord, which empties the cache after its commit (drop); a value
// read before that is not cached (put with the generation read before the
// query).
type addrCache struct {
	mu  sync.Mutex
	m   map[int64]string
	gen uint64
}

const maxCachedAddrs = 4096

// get returns the cached address of id, or the generation to put the
// address read from the database with.
func (c *addrCache) get(id int64) (string, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	return v, ok, c.gen
}

// drop empties the cache: a committed address changed.
func (c *addrCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.gen++
}

func (c *addrCache) put(id int64, addr string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // read before an address changed
	}
	if c.m == nil || len(c.m) >= maxCachedAddrs {
		c.m = make(map[int64]string)
	}
	c.m[id] = addr
}

// noteErr looks at an error of a statement: when the connection was lost
// (a server restart or failover kills every connection at once), the
// committers' connections and the idle connections of a pool the store
// owns are dropped, so the caller's retry gets a fresh connection instead
// of the next dead one.
func (s *store) noteErr(err error) {
	if !connectionLost(err) {
		return
	}
	if s.w != nil {
		s.w.connLost()
	}
	if s.ownDB && s.maxIdle > 0 {
		s.dropIdle()
	}
}

// dropIdle discards the connections idle in the pool: after a lost
// connection they are most likely dead too. Each is taken from the pool
// and handed back as bad, which closes it. (SetMaxIdleConns(0) would do it
// too, but database/sql closes the trimmed connections after unlocking the
// pool, from an array a returned connection may then overwrite: a data
// race.)
func (s *store) dropIdle() {
	for range s.db.Stats().Idle {
		// An idle one when there is one; else a new one is opened (or
		// waited for), which the short timeout bounds.
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		c, err := s.db.Conn(ctx)
		cancel()
		if err != nil {
			return
		}
		_ = c.Raw(func(any) error { return sqldriver.ErrBadConn }) // discards the connection
		_ = c.Close()
	}
}

var (
	_ driver.CaseStore       = (*store)(nil)
	_ driver.Directory       = (*store)(nil)
	_ driver.ReferenceFinder = (*store)(nil)
	_ driver.Lister          = (*store)(nil)
	_ driver.Quarantiner     = (*store)(nil)
	_ driver.StateStore      = (*store)(nil)
	_ driver.DirectoryWriter = (*store)(nil)
	_ driver.Leaser          = (*store)(nil)
	_ driver.Aser            = (*store)(nil)
	_ driver.RawKeeper       = (*store)(nil)
	_ driver.EmailUpdater    = (*store)(nil)
	_ driver.Outbox          = (*store)(nil)
	_ driver.OutboxFiler     = (*store)(nil)
	_ driver.Records         = (*store)(nil)
	_ driver.RecordBatcher   = (*store)(nil)
)

// ErrorCode classifies sqlstore errors and the errors of the database
// drivers (see classify).
func (s *store) ErrorCode(err error) driver.ErrorCode { return classify(err) }

// Close stops the committers after they finish queued writes, then closes
// the database if the store opened it.
func (s *store) Close() error {
	s.w.close()
	if s.stmts != nil {
		s.stmts.close()
	}
	if s.ownDB {
		return s.db.Close()
	}
	return nil
}

// CommitStats counts the work of the group committer since open.
type CommitStats struct {
	// Batches is the number of transactions the committer committed.
	Batches int64
	// Writes is the number of write operations committed.
	Writes int64
	// FailedBatches counts batches rolled back because a member failed
	// (that member then ran alone and the others again together).
	FailedBatches int64
	// Statements is the number of SQL statements the store ran, reads and
	// writes, besides BEGIN and COMMIT.
	Statements int64
}

// As exposes **sql.DB (the database the store uses), *Dialect and
// *CommitStats (a snapshot of the group committer's counters).
func (s *store) As(i any) bool {
	switch p := i.(type) {
	case *CommitStats:
		*p = CommitStats{Batches: s.w.batches.Load(), Writes: s.w.committed.Load(), FailedBatches: s.w.retried.Load(),
			Statements: s.statements.Load()}
		return true
	case **sql.DB:
		*p = s.db
		return true
	case *Dialect:
		*p = s.d
		return true
	}
	return false
}

// ErrorAs supports **sqlstore.Error, **pgconn.PgError, **mysql.MySQLError
// and **sqlite.Error.
func (s *store) ErrorAs(err error, i any) bool {
	switch p := i.(type) {
	case **Error:
		return errors.As(err, p)
	case **pgconn.PgError:
		return errors.As(err, p)
	case **mysql.MySQLError:
		return errors.As(err, p)
	case **sqlite.Error:
		return errors.As(err, p)
	}
	return false
}

// ---- helpers ----

// hashOf returns the hex SHA-256 of s: the indexed form of hostile strings.
func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// text makes s storable in a text column: PostgreSQL and MySQL (utf8mb4)
// reject invalid UTF-8 and PostgreSQL rejects NUL, so those are replaced.
// Raw bytes are kept intact where they matter (quarantine, attachments).
func (s *store) text(v string) string {
	if s.d == SQLite {
		return v
	}
	if utf8.ValidString(v) && (s.d != Postgres || strings.IndexByte(v, 0) < 0) {
		return v
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	if s.d == Postgres {
		v = strings.ReplaceAll(v, "\x00", "\uFFFD")
	}
	return v
}

// parseID parses a record ID issued by this store.
func parseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
	return n, err == nil && n > 0
}

func fmtID(n int64) string { return strconv.FormatInt(n, 10) }

// kindID formats the ID of a directory record with its kind ("contact-7"),
// so contact, account and employee IDs never collide (callers may keep
// them in one map, as with CRM record IDs). Case IDs are the case numbers.
func kindID(kind string, n int64) string { return kind + "-" + strconv.FormatInt(n, 10) }

// parseKindID parses an ID made by kindID.
func parseKindID(kind, id string) (int64, bool) {
	rest, ok := strings.CutPrefix(id, kind+"-")
	if !ok {
		return 0, false
	}
	return parseID(rest)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// queryer is what *sql.DB, *sql.Tx and *sql.Conn share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insertID runs an INSERT and returns the new row's ID.
func (s *store) insertID(ctx context.Context, q queryer, query string, args ...any) (int64, error) {
	if s.d == Postgres {
		var id int64
		err := q.QueryRowContext(ctx, query+" RETURNING id", args...).Scan(&id)
		return id, err
	}
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// ---- URLs ----

// Schemes registered in mailcase.DefaultURLMux by this package.
var schemes = []string{"sqlite", "postgres", "postgresql", "mysql"}

func init() {
	for _, sch := range schemes {
		mailcase.DefaultURLMux().RegisterStore(sch, &URLOpener{})
	}
}

// URLOpener opens sqlite://, postgres:// (postgresql://) and mysql:// URLs
// (see the package documentation for their forms). The store owns the
// database it opens and closes it on Close.
type URLOpener struct {
	// Options are used for every store opened; nil means defaults.
	Options *Options
}

// OpenStoreURL implements mailcase.StoreURLOpener.
func (o *URLOpener) OpenStoreURL(ctx context.Context, u *url.URL) (*mailcase.Store, error) {
	const op = "OpenStore"
	u, opts, err := keepRawParam(u, o.Options)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, err)
	}
	dialect, dsn, err := DSN(u)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, err)
	}
	if dialect == MySQL {
		return openMySQLDSN(ctx, dsn, opts)
	}
	db, err := sql.Open(dialect.driverName(), dsn)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, fmt.Errorf("sqlstore: %w", err))
	}
	return openOwned(ctx, db, dialect, opts)
}

// keepRawParam takes the keep_raw=true|false parameter, which every dialect
// accepts, off u and applies it to a copy of opts: keep_raw=false sets
// StoreOptions.DiscardRaw (the raw mail of filed mails is not kept).
func keepRawParam(u *url.URL, opts *Options) (*url.URL, *Options, error) {
	q := u.Query()
	if !q.Has("keep_raw") {
		return u, opts, nil
	}
	v := strings.ToLower(q.Get("keep_raw"))
	q.Del("keep_raw")
	c := *u
	c.RawQuery = q.Encode()
	var o Options
	if opts != nil {
		o = *opts
	}
	so := mailcase.StoreOptions{}
	if o.Store != nil {
		so = *o.Store
	}
	switch v {
	case "true", "1", "yes":
		so.DiscardRaw = false
	case "false", "0", "no":
		so.DiscardRaw = true
	default:
		return nil, nil, fmt.Errorf("sqlstore: keep_raw=%q is not true or false", v)
	}
	o.Store = &so
	return &c, &o, nil
}

// errFoundRows refuses a MySQL DSN with clientFoundRows=true: the store
// reads a 0 count of an INSERT ... ON DUPLICATE KEY UPDATE k = k as a key
// that exists (see Dialect.insertIgnore), which that flag makes 1.
var errFoundRows = errors.New("sqlstore: clientFoundRows=true is not supported: the store relies on MySQL's count of changed rows")

// openMySQLDSN opens a go-sql-driver DSN through a connector, so the driver
// logs through our logger rather than its global one. The session settings
// of DSN (strict mode, interpolation) are added when missing.
func openMySQLDSN(ctx context.Context, dsn string, opts *Options) (*mailcase.Store, error) {
	const op = "OpenStore"
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, fmt.Errorf("sqlstore: %w", err))
	}
	if cfg.ClientFoundRows {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, errFoundRows)
	}
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	}
	lg := slog.Default()
	if opts != nil && opts.Logger != nil {
		lg = opts.Logger
	}
	cfg.Logger = mysqlLogger{lg.With("component", "sqlstore", "driver", "mysql")}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, op, fmt.Errorf("sqlstore: %w", err))
	}
	return openOwned(ctx, sql.OpenDB(conn), MySQL, opts)
}

// openOwned sizes the pool of a database the store owns and opens the store.
func openOwned(ctx context.Context, db *sql.DB, dialect Dialect, opts *Options) (*mailcase.Store, error) {
	maxIdle := 16
	if dialect == SQLite {
		// One writer at a time; WAL readers run alongside.
		maxIdle = 8
		db.SetMaxOpenConns(8)
	} else {
		db.SetMaxOpenConns(32)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	db.SetMaxIdleConns(maxIdle)
	d, err := openIdle(ctx, db, dialect, opts, true, maxIdle)
	if err != nil {
		return nil, err
	}
	return mailcase.NewStore(d, d.opts.Store), nil
}

// mysqlLogger routes go-sql-driver/mysql's messages (connection errors it
// also returns) to slog at debug level.
type mysqlLogger struct{ l *slog.Logger }

func (m mysqlLogger) Print(v ...any) { m.l.Debug(fmt.Sprint(v...)) }

// OpenURL opens the store named by a sqlite://, postgres:// or mysql://
// URL with opts; mailcase.OpenStore does the same with default options.
//
// OpenURL also takes the go-sql-driver form mysql://user:pass@tcp(host:port)/db
// (or @unix(/path)), which is not a URL (mailcase.OpenStore rejects it).
func OpenURL(ctx context.Context, rawURL string, opts *Options) (*mailcase.Store, error) {
	if dsn, ok := strings.CutPrefix(rawURL, "mysql://"); ok && (strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix(")) {
		return openMySQLDSN(ctx, dsn, opts)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, mailcase.NewError(mailcase.InvalidArgument, "OpenStore", fmt.Errorf("sqlstore: invalid store URL: %w", err))
	}
	return (&URLOpener{Options: opts}).OpenStoreURL(ctx, u)
}

// DSN converts a store URL to its dialect and the DSN of its database/sql
// driver:
//
//	sqlite:///abs/path/file.db      -> file:/abs/path/file.db?<durable pragmas>
//	sqlite://relative/file.db       -> file:relative/file.db?...  (relative to the working directory)
//	sqlite:relative.db              -> the same
//	postgres://user@host:5432/db?sslmode=disable  -> passed to pgx as is
//	postgresql://...                -> the same
//	mysql://user:pass@host:3306/db  -> user:pass@tcp(host:3306)/db?<session settings>
//
// SQLite URLs accept synchronous=full|normal (full by default); MySQL URLs
// pass other query parameters to go-sql-driver/mysql.
func DSN(u *url.URL) (Dialect, string, error) {
	switch u.Scheme {
	case "sqlite":
		if err := mailcase.CheckQuery(u, "synchronous"); err != nil {
			return "", "", err
		}
		p := u.Opaque
		if p == "" {
			p = u.Host + u.Path
		}
		if p == "" {
			return "", "", errors.New("sqlstore: sqlite URL without a file path (sqlite:///path/file.db)")
		}
		if strings.ContainsAny(p, "?#") {
			// The driver reads parameters after '?': a path must not add any.
			return "", "", fmt.Errorf("sqlstore: sqlite file path %q contains '?' or '#'", p)
		}
		dsn := SQLiteDSN(p)
		switch strings.ToLower(u.Query().Get("synchronous")) {
		case "", "full":
		case "normal":
			dsn = strings.Replace(dsn, "synchronous(FULL)", "synchronous(NORMAL)", 1)
		default:
			return "", "", fmt.Errorf("sqlstore: synchronous=%q is not full or normal", u.Query().Get("synchronous"))
		}
		return SQLite, dsn, nil
	case "postgres", "postgresql":
		c := *u
		c.Scheme = "postgres"
		return Postgres, c.String(), nil
	case "mysql":
		cfg := mysql.NewConfig()
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if cfg.Addr == "" {
			cfg.Addr = "127.0.0.1:3306"
		} else if u.Port() == "" {
			cfg.Addr += ":3306"
		}
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		if cfg.DBName == "" {
			return "", "", errors.New("sqlstore: mysql URL without a database (mysql://user:pass@host:3306/db)")
		}
		// Client-side interpolation by the driver (it escapes every value
		// for the utf8mb4 connection): one round trip per statement.
		cfg.InterpolateParams = true
		cfg.Params = map[string]string{
			"sql_mode": "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
		}
		dsn := cfg.FormatDSN()
		if extra := u.Query(); len(extra) > 0 {
			dsn += "&" + extra.Encode()
		}
		if c, err := mysql.ParseDSN(dsn); err != nil {
			return "", "", fmt.Errorf("sqlstore: mysql URL: %w", err)
		} else if c.ClientFoundRows {
			return "", "", errFoundRows
		}
		return MySQL, dsn, nil
	}
	return "", "", fmt.Errorf("sqlstore: unsupported scheme %q", u.Scheme)
}

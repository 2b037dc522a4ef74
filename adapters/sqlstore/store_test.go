package sqlstore_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// rawDB opens the database behind a store URL without a store.
func rawDB(t testing.TB, rawURL string) (*sql.DB, sqlstore.Dialect) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	d, dsn, err := sqlstore.DSN(u)
	require.NoError(t, err)
	name := map[sqlstore.Dialect]string{sqlstore.SQLite: "sqlite", sqlstore.Postgres: "pgx", sqlstore.MySQL: "mysql"}[d]
	db, err := sql.Open(name, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db, d
}

func testEmail(n int, tag string) *mailcase.Email {
	return &mailcase.Email{
		IdempotencyKey: fmt.Sprintf("support\x00m%d.%s@example.com", n, tag),
		Mailbox:        "support",
		MessageID:      fmt.Sprintf("m%d.%s@example.com", n, tag),
		From:           mailcase.Address{Name: "Alice", Email: "alice@example.com"},
		To:             []mailcase.Address{{Email: "support@example.com"}},
		Subject:        fmt.Sprintf("Mail %d", n),
		Text:           "Hello",
		ReplyText:      "Hello",
	}
}

func TestMigrateUpgradesV1(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			u := d.url(t)
			db, dialect := rawDB(t, u)
			from, to, err := sqlstore.Migrate(ctx, db, dialect, 1)
			require.NoError(t, err)
			assert.Equal(t, 0, from)
			assert.Equal(t, 1, to)
			// A v1 database with a case written by the v1 schema.
			q := `INSERT INTO cases (subject, status, priority, queue, owner, origin, category, contact_id, account_id, parent_id, linked_id, created_at, updated_at, closed_at)
 VALUES ('Old case', 'open', 'normal', 'legacy', '', 'email', '', '', '', '', '', 1, 1, 0)`
			_, err = db.ExecContext(ctx, q)
			require.NoError(t, err)
			// Its participant and the key of its first mail, which v3 moves
			// (SQLite) into other tables.
			hexHash := func(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }
			_, err = db.ExecContext(ctx, `INSERT INTO case_participants (case_id, address_hash, address) VALUES (1000, '`+
				hexHash("old@example.com")+`', 'old@example.com')`)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, `INSERT INTO processed (key_hash, idem_key, case_id, created_at) VALUES ('`+
				hexHash("support/old-key")+`', 'support/old-key', 1000, 1)`)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, `SELECT 1 FROM leases`)
			require.Error(t, err, "v1 has no leases table")

			s := openURL(t, u, nil) // migrates to the latest version
			v, err := sqlstore.SchemaVersion(ctx, db)
			require.NoError(t, err)
			assert.Equal(t, sqlstore.LatestVersion(dialect), v)
			assert.GreaterOrEqual(t, v, 2)
			c, ok, err := s.FindCaseByNumber(ctx, "1000")
			require.NoError(t, err)
			require.True(t, ok, "the v1 case survives the upgrade")
			assert.Equal(t, "Old case", c.Subject)
			assert.Equal(t, []string{"old@example.com"}, c.Participants, "v1 participants survive the upgrade")
			p, ok, err := s.LookupProcessed(ctx, "support/old-key")
			require.NoError(t, err)
			require.True(t, ok, "v1 idempotency keys survive the upgrade")
			assert.Equal(t, mailcase.CaseID("1000"), p.CaseID)
			assert.Empty(t, p.Fingerprint, "a key filed before v4 has no fingerprint (the pipeline takes it as matching)")
			got, err := s.AcquireLease(ctx, "mailbox:support", "w1", time.Minute)
			require.NoError(t, err)
			assert.True(t, got, "v2 leases work on the upgraded database")
			// The next case continues the number sequence.
			nc, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(1, "upgrade")})
			require.NoError(t, err)
			assert.Equal(t, "1001", nc.Number)

			// Re-running is a no-op; a database newer than the program is refused.
			from, to, err = sqlstore.Migrate(ctx, db, dialect, 0)
			require.NoError(t, err)
			assert.Equal(t, from, to)
			_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)`)
			require.NoError(t, err)
			_, err = sqlstore.OpenURL(ctx, u, nil)
			require.ErrorIs(t, err, sqlstore.ErrSchemaTooNew)
			assert.Equal(t, mailcase.FailedPrecondition, mailcase.Code(err))
		})
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			u := d.url(t)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sqlstore.OpenURL(t.Context(), u, nil)
					if err == nil {
						err = s.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			db, dialect := rawDB(t, u)
			var n int
			require.NoError(t, db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
			files, err := os.ReadDir(filepath.Join("migrations", string(dialect)))
			require.NoError(t, err)
			assert.Equal(t, len(files), n, "each version applied exactly once")
		})
	}
}

func TestDSN(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		dialect   sqlstore.Dialect
		want      string // substring of the DSN
		err       string
	}{
		{name: "sqlite absolute", url: "sqlite:///var/lib/x/cases.db", dialect: sqlstore.SQLite, want: "file:/var/lib/x/cases.db?"},
		{name: "sqlite relative host form", url: "sqlite://cases.db", dialect: sqlstore.SQLite, want: "file:cases.db?"},
		{name: "sqlite relative opaque", url: "sqlite:data/cases.db", dialect: sqlstore.SQLite, want: "file:data/cases.db?"},
		{name: "sqlite durable by default", url: "sqlite:///x.db", dialect: sqlstore.SQLite, want: "synchronous(FULL)"},
		{name: "sqlite normal", url: "sqlite:///x.db?synchronous=normal", dialect: sqlstore.SQLite, want: "synchronous(NORMAL)"},
		{name: "sqlite bad sync", url: "sqlite:///x.db?synchronous=off", err: "synchronous"},
		{name: "sqlite unknown param", url: "sqlite:///x.db?foo=1", err: "foo"},
		{name: "sqlite no path", url: "sqlite://", err: "path"},
		{name: "sqlite path smuggling parameters", url: "sqlite:///x.db%3F_pragma=foreign_keys(0)", err: "contains"},
		{name: "postgres", url: "postgres://u@h:5432/db?sslmode=disable", dialect: sqlstore.Postgres, want: "postgres://u@h:5432/db?sslmode=disable"},
		{name: "postgresql alias", url: "postgresql://u@h/db", dialect: sqlstore.Postgres, want: "postgres://u@h/db"},
		{name: "mysql", url: "mysql://root:pw@db.example:3307/crm", dialect: sqlstore.MySQL, want: "root:pw@tcp(db.example:3307)/crm?"},
		{name: "mysql default port", url: "mysql://root@db.example/crm", dialect: sqlstore.MySQL, want: "@tcp(db.example:3306)/crm"},
		{name: "mysql params", url: "mysql://root@h:3306/crm?timeout=5s", dialect: sqlstore.MySQL, want: "timeout=5s"},
		{name: "mysql interpolates", url: "mysql://root@h:3306/crm", dialect: sqlstore.MySQL, want: "interpolateParams=true"},
		{name: "mysql no database", url: "mysql://root@h:3306/", err: "database"},
		{name: "mysql bad param", url: "mysql://root@h:3306/crm?timeout=forever", err: "forever"},
		{name: "unknown scheme", url: "oracle://x", err: "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			d, dsn, err := sqlstore.DSN(u)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dialect, d)
			assert.Contains(t, dsn, tc.want)
		})
	}
}

// TestMySQLDriverDSNForm opens mysql://user@tcp(host:port)/db, the
// go-sql-driver form that is not a URL.
func TestMySQLDriverDSNForm(t *testing.T) {
	u, err := url.Parse(mysqlURL(t))
	require.NoError(t, err)
	form := "mysql://" + u.User.String() + "@tcp(" + u.Host + ")" + u.Path
	s := openURL(t, form, nil)
	var d sqlstore.Dialect
	require.True(t, s.As(&d))
	assert.Equal(t, sqlstore.MySQL, d)
	_, err = s.CreateCase(t.Context(), &mailcase.NewCase{First: testEmail(1, "dsnform")})
	require.NoError(t, err)
	_, err = mailcase.OpenStore(t.Context(), form)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "not a URL for the mux")
}

func TestURLSchemesRegistered(t *testing.T) {
	schemes := mailcase.DefaultURLMux().Schemes()
	for _, s := range []string{"sqlite", "postgres", "postgresql", "mysql"} {
		assert.Contains(t, schemes, s)
	}
	dir := t.TempDir()
	s, err := mailcase.OpenStore(t.Context(), "sqlite://"+filepath.Join(dir, "via-mux.db"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, "via-mux.db"))
	require.NoError(t, err, "the database file was created")
}

func TestLeases(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), nil)
			require.True(t, s.CanLease())
			const name = "mail:support/0001.eml"
			got, err := s.AcquireLease(ctx, name, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.True(t, got, "a free lease is granted")
			got, err = s.AcquireLease(ctx, name, "worker-b", time.Minute)
			require.NoError(t, err)
			assert.False(t, got, "a held lease is refused to another holder")
			got, err = s.AcquireLease(ctx, name, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.True(t, got, "the holder may acquire again (extends)")
			kept, err := s.RenewLease(ctx, name, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.True(t, kept)
			kept, err = s.RenewLease(ctx, name, "worker-b", time.Minute)
			require.NoError(t, err)
			assert.False(t, kept, "only the holder renews")

			// Expiry: a dead holder's lease is taken over.
			const short = "mailbox:sales"
			got, err = s.AcquireLease(ctx, short, "worker-a", 150*time.Millisecond)
			require.NoError(t, err)
			require.True(t, got)
			got, err = s.AcquireLease(ctx, short, "worker-b", time.Minute)
			require.NoError(t, err)
			assert.False(t, got)
			time.Sleep(300 * time.Millisecond)
			got, err = s.AcquireLease(ctx, short, "worker-b", time.Minute)
			require.NoError(t, err)
			assert.True(t, got, "an expired lease is taken over")
			kept, err = s.RenewLease(ctx, short, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.False(t, kept, "the old holder learns it lost the lease")

			require.NoError(t, s.ReleaseLease(ctx, short, "worker-a"), "releasing a lease not held is no error")
			got, err = s.AcquireLease(ctx, short, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.False(t, got, "a release by a non-holder changes nothing")
			require.NoError(t, s.ReleaseLease(ctx, short, "worker-b"))
			got, err = s.AcquireLease(ctx, short, "worker-a", time.Minute)
			require.NoError(t, err)
			assert.True(t, got, "a released lease is free")

			// Injection-shaped names are plain data.
			evil := `x'); DELETE FROM leases; --`
			got, err = s.AcquireLease(ctx, evil, evil, time.Minute)
			require.NoError(t, err)
			assert.True(t, got)
			got, err = s.AcquireLease(ctx, name, "worker-b", time.Minute)
			require.NoError(t, err)
			assert.False(t, got, "the leases table is intact")

			_, err = s.AcquireLease(ctx, "", "w", time.Minute)
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
			_, err = s.AcquireLease(ctx, "x", "w", 0)
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
		})
	}
}

// TestLeaseRace has many goroutines race for one lease: exactly one wins.
func TestLeaseRace(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := openURL(t, d.url(t), nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			winners := 0
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.AcquireLease(t.Context(), "contended", fmt.Sprintf("w%d", i), time.Minute)
					assert.NoError(t, err)
					if got {
						mu.Lock()
						winners++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			assert.Equal(t, 1, winners)
		})
	}
}

func TestGroupCommit(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), &sqlstore.Options{MaxBatch: 32, BatchWait: 20 * time.Millisecond, Committers: 1})
			const n = 64
			var wg sync.WaitGroup
			errs := make([]error, n)
			cases := make([]mailcase.Case, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i%16 == 5 { // a bad write among good ones
						errs[i] = s.AppendEmail(ctx, "999999", testEmail(i, "gc"))
						return
					}
					cases[i], errs[i] = s.CreateCase(ctx, &mailcase.NewCase{Queue: "gc", First: testEmail(i, "gc")})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i%16 == 5 {
					assert.Equal(t, mailcase.NotFound, mailcase.Code(err), "mail %d", i)
					continue
				}
				require.NoError(t, err, "mail %d", i)
				p, ok, err := s.LookupProcessed(ctx, testEmail(i, "gc").IdempotencyKey)
				require.NoError(t, err)
				require.True(t, ok, "mail %d committed", i)
				assert.Equal(t, cases[i].ID, p.CaseID)
			}
			var st sqlstore.CommitStats
			require.True(t, s.As(&st))
			t.Logf("%d writes in %d transactions (%d failed batches)", st.Writes, st.Batches, st.FailedBatches)
			assert.Less(t, st.Batches, int64(n), "writes shared transactions")
			assert.Positive(t, st.FailedBatches, "a bad write failed its batch, which was run again without it")
			cs, err := s.ListCases(ctx, &mailcase.ListOptions{Queue: "gc"})
			require.NoError(t, err)
			assert.Len(t, cs, n-n/16, "every good mail filed once, the bad one nowhere")
		})
	}
}

// TestSQLiteReadOnly opens a database that cannot be written: the error
// is clear, at open.
func TestSQLiteReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ro.db")
	s := openURL(t, "sqlite://"+path, nil)
	_, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(1, "ro")})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	t.Run("read-only file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: file permissions do not stop writes (the mode=ro case below covers the error)")
		}
		require.NoError(t, os.Chmod(path, 0o444))
		t.Cleanup(func() { os.Chmod(path, 0o644) })
		_, err := sqlstore.OpenURL(ctx, "sqlite://"+path, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "readonly")
	})
	t.Run("read-only open", func(t *testing.T) {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(1000)")
		require.NoError(t, err)
		defer db.Close()
		_, err = sqlstore.OpenStore(ctx, db, sqlstore.SQLite, &sqlstore.Options{NoMigrate: true})
		require.Error(t, err)
		assert.Equal(t, mailcase.PermissionDenied, mailcase.Code(err))
		assert.Contains(t, err.Error(), "readonly")
		t.Log(err)
	})
}

// TestSQLiteFull fills the database to its size limit (as a full disk
// would): filing fails with ResourceExhausted and a clear message, and
// nothing of the failed mail is kept.
func TestSQLiteFull(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "full.db")
	openURL(t, "sqlite://"+path, nil).Close()
	db, err := sql.Open("sqlite", sqlstore.SQLiteDSN(path)+"&_pragma=max_page_count(80)")
	require.NoError(t, err)
	defer db.Close()
	s, err := sqlstore.OpenStore(ctx, db, sqlstore.SQLite, &sqlstore.Options{Store: &mailcase.StoreOptions{MaxAttempts: -1}})
	require.NoError(t, err)
	defer s.Close()
	var full error
	var filed []int
	for i := range 200 {
		e := testEmail(i, "full")
		e.Text = strings.Repeat("x", 8000)
		if _, err := s.CreateCase(ctx, &mailcase.NewCase{First: e}); err != nil {
			full = err
			break
		}
		filed = append(filed, i)
	}
	require.Error(t, full, "the database filled up")
	assert.Equal(t, mailcase.ResourceExhausted, mailcase.Code(full))
	assert.Contains(t, full.Error(), "full")
	t.Log(full)
	p, ok, err := s.LookupProcessed(ctx, testEmail(len(filed), "full").IdempotencyKey)
	require.NoError(t, err)
	assert.False(t, ok, "the mail that did not fit left no key behind: %+v", p)
	_, ok, err = s.LookupProcessed(ctx, testEmail(filed[len(filed)-1], "full").IdempotencyKey)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestErrorCodesAndAs(t *testing.T) {
	s := openURL(t, sqliteURL(t), nil)
	var db *sql.DB
	require.True(t, s.As(&db))
	require.NoError(t, db.PingContext(t.Context()))
	var d sqlstore.Dialect
	require.True(t, s.As(&d))
	assert.Equal(t, sqlstore.SQLite, d)
	_, _, err := s.GetCase(t.Context(), "not-a-number")
	require.NoError(t, err)
	err = s.AppendEmail(t.Context(), "424242", testEmail(1, "as"))
	require.Error(t, err)
	var se *sqlstore.Error
	require.True(t, s.ErrorAs(err, &se))
	assert.Equal(t, driver.NotFound, se.Code)
}

func TestClosedStore(t *testing.T) {
	u := sqliteURL(t)
	s, err := sqlstore.OpenURL(t.Context(), u, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.CreateCase(t.Context(), &mailcase.NewCase{First: testEmail(1, "closed")})
	assert.ErrorIs(t, err, mailcase.ErrClosed)
}

// FuzzDSN checks that no store URL makes DSN panic, and that accepted
// SQLite URLs keep the durable settings.
func FuzzDSN(f *testing.F) {
	for _, s := range []string{"sqlite:///x.db", "sqlite://rel.db?synchronous=normal", "sqlite:a.db",
		"postgres://u:p@h:5432/db?sslmode=disable", "postgresql://h/db", "mysql://root@h:3306/db?timeout=1s",
		"mysql://u:p@[::1]:3306/db", "mysql://u@h/", "oracle://x", "sqlite://", "mysql://u@h/db?%zz=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		d, dsn, err := sqlstore.DSN(u)
		if err != nil {
			return
		}
		if d == sqlstore.SQLite {
			if u.Query().Get("synchronous") == "" && !strings.Contains(dsn, "synchronous(FULL)") {
				t.Fatalf("sqlite URL %q lost synchronous=FULL: %s", s, dsn)
			}
			if strings.Count(dsn, "?") != 1 {
				t.Fatalf("sqlite URL %q smuggles parameters into the DSN: %s", s, dsn)
			}
		}
	})
}

// TestDuplicateCreateCase files one mail from many goroutines at once (so
// duplicates meet in one group-commit batch and across batches): every
// call returns the one case, no other case row is left behind, and on
// SQLite the case numbers stay contiguous.
func TestDuplicateCreateCase(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := openURL(t, d.url(t), nil)
			contact, err := s.CreateContact(ctx, &mailcase.NewContact{Name: "Alice", Email: "alice@example.com"})
			require.NoError(t, err)
			first, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(1, "dup"), ContactID: contact.ID})
			require.NoError(t, err)
			assert.Equal(t, []string{"alice@example.com", "support@example.com"}, first.Participants,
				"the contact's address joins the participants")

			const callers = 16
			ids := make([]mailcase.CaseID, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := 2 + i%2 // two mails, each filed by eight callers
					c, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(key, "dup"), ContactID: contact.ID})
					ids[i], errs[i] = c.ID, err
				}()
			}
			wg.Wait()
			for i := range callers {
				require.NoError(t, errs[i])
				assert.Equal(t, ids[i%2], ids[i], "caller %d got another case for the same mail", i)
			}
			assert.NotEqual(t, ids[0], ids[1])

			again, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(1, "dup")})
			require.NoError(t, err)
			assert.Equal(t, first.ID, again.ID, "a redelivery returns the first case")
			assert.Equal(t, first.Participants, again.Participants)

			last, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(4, "dup")})
			require.NoError(t, err)
			cases, err := s.ListCases(ctx, &mailcase.ListOptions{})
			require.NoError(t, err)
			assert.Len(t, cases, 4, "duplicates leave no case behind")
			if d.name == "sqlite" {
				assert.Equal(t, "1003", last.Number, "numbers given back by duplicates are reused")
			}
			for _, id := range []mailcase.CaseID{first.ID, ids[0], ids[1]} {
				ins, err := s.ListInteractions(ctx, id)
				require.NoError(t, err)
				assert.Len(t, ins, 1, "case %s holds its mail once", id)
			}
		})
	}
}

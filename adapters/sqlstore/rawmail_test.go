package sqlstore_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// rawStats reads what raw_mail holds.
type rawStats struct{ rows, size, stored, deflated int64 }

func readRawStats(t testing.TB, db *sql.DB) rawStats {
	t.Helper()
	var st rawStats
	require.NoError(t, db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(LENGTH(data)), 0),
 COALESCE(SUM(CASE WHEN encoding = 'deflate' THEN 1 ELSE 0 END), 0) FROM raw_mail`).Scan(&st.rows, &st.size, &st.stored, &st.deflated))
	return st
}

// Filing through the pipeline keeps every mail's raw once, compressed when
// that pays, and a redelivery of the whole corpus writes nothing more; the
// raw mail comes back byte for byte.
func TestRawMail_KeptOnceCompressed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cases.db")
	db, err := sql.Open("sqlite", sqlstore.SQLiteDSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlstore.OpenStore(context.Background(), db, sqlstore.SQLite, &sqlstore.Options{Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.True(t, s.KeepsRaw())

	raws := mailcasetest.GenerateCorpus(300, 9)
	start := time.Now()
	filed := fileCorpus(t, s, raws, 4)
	took := time.Since(start)
	require.EqualValues(t, len(raws), filed)
	st := readRawStats(t, db)
	assert.EqualValues(t, len(raws), st.rows, "one raw mail per filed mail")
	var total int64
	for _, r := range raws {
		total += int64(len(r))
	}
	assert.Equal(t, total, st.size)
	assert.Less(t, st.stored, st.size*3/4, "compressed: %d of %d bytes", st.stored, st.size)
	assert.Positive(t, st.deflated)
	t.Logf("%d mails filed in %v: raw %d bytes kept as %d (%.1f%%), %d of %d compressed",
		len(raws), took, st.size, st.stored, 100*float64(st.stored)/float64(st.size), st.deflated, st.rows)

	keys, err := s.RawKeys(context.Background(), "", 0)
	require.NoError(t, err)
	require.Len(t, keys, len(raws))
	byKey := map[string][]byte{}
	for _, raw := range raws {
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err)
		byKey[mailcase.IdempotencyKey("support", m)] = raw
	}
	for _, k := range keys {
		got, ok, err := s.GetRaw(context.Background(), k)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, byKey[k], got, "raw mail of %q", k)
	}

	// Redelivery: every mail is a duplicate, nothing is written again.
	again := fileCorpus(t, s, raws, 4)
	require.EqualValues(t, len(raws), again)
	assert.Equal(t, st, readRawStats(t, db), "a duplicate never writes its raw mail again")
}

// keep_raw=false in the store URL turns keeping off in every dialect;
// other values are refused.
func TestRawMail_KeepRawURLParameter(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			u, err := url.Parse(d.url(t))
			require.NoError(t, err)
			q := u.Query()
			q.Set("keep_raw", "false")
			u.RawQuery = q.Encode()
			s := openURL(t, u.String(), &sqlstore.Options{Logger: quietLogger()})
			assert.False(t, s.KeepsRaw())
			require.EqualValues(t, 1, fileCorpus(t, s, mailcasetest.GenerateCorpus(1, 3), 1))
			keys, err := s.RawKeys(context.Background(), "", 0)
			require.NoError(t, err)
			assert.Empty(t, keys, "no raw mail kept with keep_raw=false")

			q.Set("keep_raw", "maybe")
			u.RawQuery = q.Encode()
			_, err = sqlstore.OpenURL(context.Background(), u.String(), nil)
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "err %v", err)
		})
	}
}

// BenchmarkRawMail files the generated corpus into SQLite with and without
// keeping the raw mail: compare mails/s, and raw-bytes/mail with
// stored-bytes/mail for the space.
func BenchmarkRawMail(b *testing.B) {
	raws := benchCorpusMails()
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "keep", false: "discard"}[keep]
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			var mails int64
			var st rawStats
			for b.Loop() {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "cases.db")
				db, err := sql.Open("sqlite", sqlstore.SQLiteDSN(path))
				require.NoError(b, err)
				s, err := sqlstore.OpenStore(context.Background(), db, sqlstore.SQLite,
					&sqlstore.Options{Logger: quietLogger(), Store: &mailcase.StoreOptions{DiscardRaw: !keep}})
				require.NoError(b, err)
				b.StartTimer()
				start := time.Now()
				mails += fileCorpus(b, s, raws, *benchWorkers)
				total += time.Since(start)
				b.StopTimer()
				st = readRawStats(b, db)
				_ = s.Close()
				fi, _ := os.Stat(path)
				if fi != nil {
					b.ReportMetric(float64(fi.Size())/float64(len(raws)), "db-bytes/mail")
				}
				_ = db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(mails)/total.Seconds(), "mails/s")
			if st.rows > 0 {
				b.ReportMetric(float64(st.size)/float64(st.rows), "raw-bytes/mail")
				b.ReportMetric(float64(st.stored)/float64(st.rows), "stored-bytes/mail")
			}
		})
	}
}

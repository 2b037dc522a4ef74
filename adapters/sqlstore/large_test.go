package sqlstore_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

var largeImport = flag.Int("large", 0, "TestLargeImport: file this many generated mails durably into SQLite (0 skips)")

// TestLargeImport files -large generated mails through the pipeline into
// a durable SQLite file (WAL, synchronous=FULL) with -workers goroutines and
// reports the rate and the time 1,000,000 mails would take at that rate.
// It is opt-in: go test -run TestLargeImport -large 100000 -timeout 60m.
func TestLargeImport(t *testing.T) {
	if *largeImport <= 0 {
		t.Skip("opt-in: -large N")
	}
	const chunk = 5000
	path := filepath.Join(t.TempDir(), "large.db")
	s := openURL(t, "sqlite://"+path, &sqlstore.Options{Logger: quietLogger()})
	start := time.Now()
	var filed int64
	for done, seed := 0, int64(1000); done < *largeImport; seed++ {
		n := min(chunk, *largeImport-done)
		raws := mailcasetest.GenerateCorpus(n, seed) // chunks keep memory flat
		t0 := time.Now()
		filed += fileCorpus(t, s, raws, *benchWorkers)
		done += n
		if done%50000 == 0 || done == *largeImport {
			el := time.Since(start)
			t.Logf("%d mails in %v (%.0f mails/s overall, %.0f mails/s in the last chunk)", done, el.Round(time.Second),
				float64(filed)/el.Seconds(), float64(n)/time.Since(t0).Seconds())
		}
	}
	el := time.Since(start)
	var st sqlstore.CommitStats
	require.True(t, s.As(&st))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	rate := float64(filed) / el.Seconds()
	t.Logf("filed %d mails durably in %v: %.0f mails/s, %.1f writes per commit, database %d MB; 1,000,000 mails would take %v at this rate",
		filed, el.Round(time.Second), rate, float64(st.Writes)/float64(st.Batches), fi.Size()>>20,
		time.Duration(1e6/rate*float64(time.Second)).Round(time.Second))
	require.Equal(t, int64(*largeImport), filed)
}

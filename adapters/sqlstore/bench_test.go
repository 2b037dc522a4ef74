package sqlstore_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

var (
	benchCorpus  = flag.Int("corpus", 3000, "mails in the generated corpus of BenchmarkPipeline")
	benchWorkers = flag.Int("workers", 8, "goroutines feeding Pipeline.Process in BenchmarkPipeline")
	benchCommit  = flag.Int("committers", 0, "sqlstore Options.Committers in BenchmarkPipeline (0: default)")
	benchWait    = flag.Duration("batchwait", 0, "sqlstore Options.BatchWait in BenchmarkPipeline (0: default)")
)

var (
	corpusOnce sync.Once
	corpus     [][]byte
)

func benchCorpusMails() [][]byte {
	corpusOnce.Do(func() { corpus = mailcasetest.GenerateCorpus(*benchCorpus, 42) })
	return corpus
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fileCorpus runs raws through a new pipeline on s with workers goroutines
// and returns how many mails ended Done.
func fileCorpus(tb testing.TB, s *mailcase.Store, raws [][]byte, workers int) int64 {
	tb.Helper()
	p, err := mailcase.NewPipeline(s, &mailcase.Options{Logger: quietLogger(), Mailbox: mailcase.Mailbox{Name: "support"}})
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	var next, done, failed atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(raws)) {
					return
				}
				res, err := p.Process(ctx, raws[i], nil)
				if err != nil || res.Outcome.Disposition != mailcase.Done {
					if failed.Add(1) <= 3 {
						tb.Logf("mail %d: %v %+v", i, err, res.Outcome.Error)
					}
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		tb.Errorf("%d of %d mails were not filed", f, len(raws))
	}
	return done.Load()
}

// BenchmarkPipeline files the same generated corpus through the pipeline
// into each store, with *benchWorkers goroutines calling Process. One
// iteration is the whole corpus into a new, empty store; mails/s is the
// figure to compare.
func BenchmarkPipeline(b *testing.B) {
	raws := benchCorpusMails()
	stores := []struct {
		name string
		open func(testing.TB) *mailcase.Store
	}{
		{"memstore", func(tb testing.TB) *mailcase.Store {
			s, err := memstore.OpenStore(&memstore.Options{Logger: quietLogger()})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		}},
		{"sqlite", func(tb testing.TB) *mailcase.Store {
			return openURL(tb, sqliteURL(tb), &sqlstore.Options{Logger: quietLogger(), Committers: *benchCommit, BatchWait: *benchWait})
		}},
		{"postgres", func(tb testing.TB) *mailcase.Store {
			return openURL(tb, postgresURL(tb), &sqlstore.Options{Logger: quietLogger(), Committers: *benchCommit, BatchWait: *benchWait})
		}},
		{"mysql", func(tb testing.TB) *mailcase.Store {
			return openURL(tb, mysqlURL(tb), &sqlstore.Options{Logger: quietLogger(), Committers: *benchCommit, BatchWait: *benchWait})
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			var total time.Duration
			var lastStats sqlstore.CommitStats
			var mails int64
			for b.Loop() {
				b.StopTimer()
				s := st.open(b)
				b.StartTimer()
				start := time.Now()
				mails += fileCorpus(b, s, raws, *benchWorkers)
				total += time.Since(start)
				s.As(&lastStats)
			}
			b.ReportMetric(float64(mails)/total.Seconds(), "mails/s")
			if st := lastStats; st.Batches > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Batches), "writes/commit")
				b.ReportMetric(float64(st.Statements)/float64(len(raws)), "stmts/mail")
			}
		})
	}
}

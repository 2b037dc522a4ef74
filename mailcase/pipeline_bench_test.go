package mailcase_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// BenchmarkPipeline runs 1,000 generated realistic mails through the full
// pipeline (parse, dedupe, filters, auto detection, sender identification,
// threading, filing) into a fresh memstore per pass. One op is one pass;
// see mails/s and MB/s. Compare with BenchmarkParse/go-message in the same
// run (the target is at least half of raw go-message parsing).
func BenchmarkPipeline(b *testing.B) {
	corpus := mailcasetest.GenerateCorpus(1000, 1)
	var total int64
	for _, m := range corpus {
		total += int64(len(m))
	}
	quiet := slog.New(slog.DiscardHandler)
	fresh := func(b *testing.B, concurrency int) *mailcase.Pipeline {
		s, err := memstore.OpenStore(&memstore.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		p, err := mailcase.NewPipeline(s, &mailcase.Options{Logger: quiet, MaxConcurrency: concurrency,
			Mailbox: mailcase.Mailbox{Name: "support", Address: mailcasetest.CorpusMailbox,
				BlockDomains: []string{"spam.example"}}})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	b.Run("Process", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			p := fresh(b, 1)
			b.StartTimer()
			for _, raw := range corpus {
				res, err := p.Process(ctx, raw, nil)
				if err != nil || res.Outcome.Disposition != mailcase.Done {
					b.Fatalf("%v %+v", err, res.Outcome)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(corpus))/b.Elapsed().Seconds(), "mails/s")
	})
	// Paired: each op is one go-message pass and one pipeline pass, so the
	// ratio is robust to load changes on a shared machine. pipeline/raw is
	// the pipeline's throughput as a fraction of raw go-message parsing
	// (target >= 0.5).
	b.Run("VsGoMessage", func(b *testing.B) {
		ctx := context.Background()
		var raw, pipe, rawCPU, pipeCPU time.Duration
		for b.Loop() {
			b.StopTimer()
			p := fresh(b, 1)
			b.StartTimer()
			t0, c0 := time.Now(), plCPUTime()
			for _, m := range corpus {
				if err := readAllGoMessage(m); err != nil {
					b.Fatal(err)
				}
			}
			t1, c1 := time.Now(), plCPUTime()
			for _, m := range corpus {
				if _, err := p.Process(ctx, m, nil); err != nil {
					b.Fatal(err)
				}
			}
			raw, pipe = raw+t1.Sub(t0), pipe+time.Since(t1)
			rawCPU, pipeCPU = rawCPU+c1-c0, pipeCPU+plCPUTime()-c1
		}
		mb := float64(total) * float64(b.N) / 1e6
		b.ReportMetric(mb/raw.Seconds(), "raw-MB/s")
		b.ReportMetric(mb/pipe.Seconds(), "pipeline-MB/s")
		b.ReportMetric(raw.Seconds()/pipe.Seconds(), "pipeline/raw")
		if pipeCPU > 0 {
			// CPU time is what other processes on a shared machine do not
			// distort (GC work lands in the pass that caused it).
			b.ReportMetric(rawCPU.Seconds()/pipeCPU.Seconds(), "pipeline/raw-cpu")
		}
	})
	b.Run("Run-2", func(b *testing.B) {
		b.SetBytes(total)
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			p := fresh(b, 2)
			src := mailcasetest.NewSource(corpus...)
			b.StartTimer()
			if err := p.Run(ctx, src); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(corpus))/b.Elapsed().Seconds(), "mails/s")
	})
}

package mailcase_test

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/jhillyerd/enmime/v2"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// readAllGoMessage reads every part of raw with go-message, decoding the
// transfer encodings (no charset conversion: go-message converts only with
// its package-level CharsetReader, which this module never sets).
func readAllGoMessage(raw []byte) error {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return err
	}
	return e.Walk(func(path []int, ent *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		if ent.MultipartReader() != nil {
			return nil
		}
		_, err = io.Copy(io.Discard, ent.Body)
		return err
	})
}

// BenchmarkParse compares, over 1,000 generated realistic mails, raw
// go-message parsing (all parts read), raw enmime parsing (ReadEnvelope, with
// its charset detection) and ParseMessage. One op is one pass over the
// corpus; see the mails/s and MB/s metrics.
func BenchmarkParse(b *testing.B) {
	corpus := mailcasetest.GenerateCorpus(1000, 1)
	var total int64
	for _, m := range corpus {
		total += int64(len(m))
	}
	run := func(b *testing.B, parse func([]byte) error) {
		b.SetBytes(total)
		b.ReportAllocs()
		for b.Loop() {
			for _, raw := range corpus {
				if err := parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(corpus))/b.Elapsed().Seconds(), "mails/s")
	}
	b.Run("go-message", func(b *testing.B) { run(b, readAllGoMessage) })
	b.Run("enmime", func(b *testing.B) {
		run(b, func(raw []byte) error {
			_, err := enmime.ReadEnvelope(bytes.NewReader(raw))
			return err
		})
	})
	b.Run("ParseMessage", func(b *testing.B) {
		run(b, func(raw []byte) error {
			m, err := mailcase.ParseMessage(raw, nil)
			if err == nil {
				_ = mailcase.DetectAuto(m)
			}
			return err
		})
	})
}

// BenchmarkParseLarge parses one 25 MB mail (a base64 attachment) and
// reports the peak heap growth measured by a sampling goroutine, as a
// multiple of the mail's size (target: at most 3x).
func BenchmarkParseLarge(b *testing.B) {
	raw := largeMail(25<<20, false)
	b.SetBytes(int64(len(raw)))
	var peak uint64
	for b.Loop() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		done := make(chan struct{})
		sampled := make(chan uint64)
		go func() {
			var max uint64
			var s runtime.MemStats
			for {
				runtime.ReadMemStats(&s)
				if s.HeapInuse > base && s.HeapInuse-base > max {
					max = s.HeapInuse - base
				}
				select {
				case <-done:
					sampled <- max
					return
				case <-time.After(200 * time.Microsecond):
				}
			}
		}()
		m, err := mailcase.ParseMessage(raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > base && ms.HeapInuse-base > peak {
			peak = ms.HeapInuse - base
		}
		runtime.KeepAlive(m)
		close(done)
		if p := <-sampled; p > peak {
			peak = p
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(peak)/float64(len(raw)), "peak-x")
}

// BenchmarkParseRatio alternates a go-message pass and a ParseMessage pass
// over the same corpus in every iteration, so that load from other
// processes hits both alike, and reports ParseMessage's rate as a multiple
// of raw go-message's (target: at least 0.6).
func BenchmarkParseRatio(b *testing.B) {
	corpus := mailcasetest.GenerateCorpus(1000, 1)
	var goMsg, parse time.Duration
	for b.Loop() {
		t0 := time.Now()
		for _, raw := range corpus {
			if err := readAllGoMessage(raw); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, raw := range corpus {
			m, err := mailcase.ParseMessage(raw, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = mailcase.DetectAuto(m)
		}
		goMsg += t1.Sub(t0)
		parse += time.Since(t1)
	}
	b.ReportMetric(goMsg.Seconds()/parse.Seconds(), "x-go-message")
}

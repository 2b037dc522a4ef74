package threading_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

var benchSizes = []int{10 << 10, 100 << 10, 1 << 20, 10 << 20}

// bigText is a reply of about n bytes: new text, then an attribution and a
// long quoted history with nested attributions, separators and header-like
// lines (the expensive cases for the line rules).
func bigText(n int) string {
	var b strings.Builder
	b.WriteString("Hi,\n\nthe printer still fails.\n\nJohn\n\nOn Tue, Mar 5, 2024 at 10:15 AM Support <support@company.example> wrote:\n")
	i := 0
	for b.Len() < n {
		fmt.Fprintf(&b, "> line %d of the quoted history, with a Sent: word and [ref: fragments\n", i)
		if i%50 == 0 {
			b.WriteString("> From: someone@example.com\n> On Mon, 4 Mar 2024 at 09:00, X <x@y.example> wrote:\n>\n")
		}
		i++
	}
	return b.String()
}

// bigHTML is an HTML reply of about n bytes with a Gmail quote container.
func bigHTML(n int) string {
	var b strings.Builder
	b.WriteString(`<div dir="ltr">Hi,<div><br></div><div>the printer still fails.</div></div><div class="gmail_quote"><div class="gmail_attr">On Tue, Mar 5, 2024 at 10:15 AM Support wrote:</div><blockquote class="gmail_quote">`)
	i := 0
	for b.Len() < n {
		fmt.Fprintf(&b, "<div>quoted <b>line</b> %d &amp; more</div><blockquote type=cite><p>nested %d</p></blockquote>\n", i, i)
		i++
	}
	b.WriteString("</blockquote></div>")
	return b.String()
}

func BenchmarkExtractText(b *testing.B) {
	ex := threading.NewExtractor(nil)
	for _, n := range benchSizes {
		text := bigText(n)
		b.Run(sizeName(n), func(b *testing.B) {
			loop(b, len(text), func() {
				if ex.ExtractText("Re: x", text) == "" {
					b.Fatal("empty")
				}
			})
		})
	}
}

func BenchmarkExtractHTML(b *testing.B) {
	ex := threading.NewExtractor(nil)
	for _, n := range benchSizes {
		h := bigHTML(n)
		b.Run(sizeName(n), func(b *testing.B) {
			loop(b, len(h), func() {
				if ex.ExtractHTML("Re: x", h) == "" {
					b.Fatal("empty")
				}
			})
		})
	}
}

// BenchmarkResolveBody resolves a mail whose only signal is a signed token
// at the very end of a large body, behind many unsigned [ref: fragments
// and ctx: look-alikes, so every body scanner reads it all.
func BenchmarkResolveBody(b *testing.B) {
	f := newFixture(b)
	r := f.resolver(b, nil)
	tok, err := f.codec.Token(f.open.ID)
	require.NoError(b, err)
	for _, n := range benchSizes {
		text := strings.Repeat("quoted [ref:abc ctx:12.x CRM:1 line\n", n/37) + tok
		d := delivery(mail{subject: "Re: x", text: text})
		b.Run(sizeName(n), func(b *testing.B) {
			loop(b, len(text), func() {
				dec, err := r.ResolveThread(b.Context(), d)
				if err != nil || dec.CaseID != f.open.ID {
					b.Fatal(dec, err)
				}
			})
		})
	}
}

// BenchmarkResolveReferences resolves a mail with a long References field
// whose only known ID is the oldest.
func BenchmarkResolveReferences(b *testing.B) {
	f := newFixture(b)
	r := f.resolver(b, &threading.Options{MaxReferences: 1 << 20})
	for _, n := range []int{100, 1000, 10000} {
		refs := []string{"a1@customer.example"}
		for i := 1; i < n; i++ {
			refs = append(refs, fmt.Sprintf("id%d@nowhere.example", i))
		}
		d := delivery(mail{refs: refs})
		b.Run(fmt.Sprintf("ids=%d", n), func(b *testing.B) {
			loop(b, 0, func() {
				dec, err := r.ResolveThread(b.Context(), d)
				if err != nil || dec.CaseID != f.open.ID {
					b.Fatal(dec, err)
				}
			})
		})
	}
}

// cpuTime returns the process's user+system CPU time. The machine running
// benchmarks is shared, so CPU time per op (reported as cpu-ns/op and
// cpu-MB/s) is a steadier measure of linearity than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports CPU time per op and per MB.
func loop(b *testing.B, size int, f func()) {
	b.Helper()
	if size > 0 {
		b.SetBytes(int64(size))
	}
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	cpu := cpuTime() - start
	if n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
		if size > 0 {
			b.ReportMetric(float64(size)*float64(n)/cpu.Seconds()/1e6, "cpu-MB/s")
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMB", n>>20)
	}
	return fmt.Sprintf("%dKB", n>>10)
}

// hostileHTML is about n bytes of HTML: a short answer, 512 nested
// unclosed elements, then stray end tags (no open element of their name)
// to the end, the worst case of end-tag handling.
func hostileHTML(n int) string {
	var b strings.Builder
	b.WriteString("<html><head><title>x</title><body><p>My printer is broken</p>")
	b.WriteString(strings.Repeat("<span>", 512))
	for b.Len() < n {
		b.WriteString("</div></blockquote></em>")
	}
	return b.String()
}

// BenchmarkHostileHTML extracts the reply of, and resolves, hostile HTML
// (512 nested unclosed tags and many stray end tags): time stays linear.
func BenchmarkHostileHTML(b *testing.B) {
	ex := threading.NewExtractor(nil)
	f := newFixture(b)
	r := f.resolver(b, nil)
	for _, n := range []int{1 << 20, 10 << 20} {
		h := hostileHTML(n)
		b.Run("ExtractHTML/"+sizeName(n), func(b *testing.B) {
			loop(b, len(h), func() {
				if ex.ExtractHTML("Re: x", h) != "My printer is broken" {
					b.Fatal("wrong reply")
				}
			})
		})
		d := delivery(mail{subject: "Re: x", html: h})
		b.Run("ResolveThread/"+sizeName(n), func(b *testing.B) {
			loop(b, len(h), func() {
				dec, err := r.ResolveThread(b.Context(), d)
				if err != nil || dec.CaseID != "" {
					b.Fatal(dec, err)
				}
			})
		})
	}
}

// BenchmarkOutgoingHostileTitle builds the headers of a mail whose case
// subject is 220 KB of empty tokens (formerly quadratic).
func BenchmarkOutgoingHostileTitle(b *testing.B) {
	c, err := threading.NewCodec(testKey, "mail.company.example")
	require.NoError(b, err)
	req := &threading.OutgoingRequest{Case: mailcase.Case{ID: "case-1", Number: "1", Subject: strings.Repeat("[ref:]", 20000) + "x" + strings.Repeat("Ⱥ", 20000)}}
	loop(b, len(req.Case.Subject), func() {
		if _, err := c.Outgoing(req); err != nil {
			b.Fatal(err)
		}
	})
}

package routing_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

// benchText returns a realistic English support mail body of about n bytes.
func benchText(n int) string {
	g := &gen{r: rand.New(rand.NewPCG(99, 1))}
	var b strings.Builder
	cats := []string{"billing", "technical", "shipping", "account"}
	for b.Len() < n {
		_, body := g.mail(cats[g.r.IntN(len(cats))])
		b.WriteString(body)
		b.WriteString("\n\n")
	}
	return b.String()[:n]
}

// benchKeywords returns n distinct keywords: real support words first,
// then pseudo-words made of syllables (a realistic mix of short and long
// keywords and two-word phrases), spread over four queues.
func benchKeywords(n int) [][]string {
	real := []string{"invoice", "refund*", "credit card", "error", "crash*", "parcel", "delivery", "password", "login", "tracking"}
	syl := []string{"ka", "ro", "mi", "tes", "ven", "lo", "pra", "dun", "shi", "el", "qua", "tor", "bri", "zen", "ol", "ux"}
	r := rand.New(rand.NewPCG(7, 7))
	seen := map[string]bool{}
	sets := make([][]string, 4)
	for i := 0; i < n; i++ {
		var w string
		if i < len(real) {
			w = real[i]
		} else {
			for {
				var b strings.Builder
				for range 2 + r.IntN(3) {
					b.WriteString(syl[r.IntN(len(syl))])
				}
				if r.IntN(5) == 0 {
					b.WriteString(" " + syl[r.IntN(len(syl))] + syl[r.IntN(len(syl))])
				}
				w = b.String()
				if !seen[w] {
					break
				}
			}
		}
		seen[w] = true
		sets[i%4] = append(sets[i%4], w)
	}
	return sets
}

func benchRouter(b *testing.B, n int) *routing.Router {
	b.Helper()
	cfg := &routing.Config{Queues: []string{"default", "q0", "q1", "q2", "q3"}, Keywords: &routing.KeywordConfig{}}
	for i, words := range benchKeywords(n) {
		set := routing.KeywordSet{Effect: routing.Effect{Queue: fmt.Sprintf("q%d", i)}}
		for _, w := range words {
			set.Words = append(set.Words, routing.Keyword{Text: w})
		}
		cfg.Keywords.Sets = append(cfg.Keywords.Sets, set)
	}
	r, err := routing.Compile(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkKeywordScoring routes a 20 KB mail by keywords only (normalising
// subject and body, scanning both once, scoring) with 10, 1,000 and 10,000
// keywords. The cost must not grow with the number of keywords.
func BenchmarkKeywordScoring(b *testing.B) {
	body := benchText(20 << 10)
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("keywords=%d", n), func(b *testing.B) {
			r := benchRouter(b, n)
			d := &mailcase.Delivery{
				Mailbox: &mailcase.Mailbox{Name: "support"},
				Message: &mailcase.Message{Subject: "Refund for invoice 123456", Text: body, ReplyText: body},
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Route(b.Context(), d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClassify classifies a 2 KB mail with a model trained on 400 mails.
func BenchmarkClassify(b *testing.B) {
	nb, err := routing.Train(labelled(400, 1), nil)
	if err != nil {
		b.Fatal(err)
	}
	doc := routing.Document{Subject: "Where is my parcel?", Body: benchText(2 << 10)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nb.Classify(b.Context(), doc); err != nil {
			b.Fatal(err)
		}
	}
}

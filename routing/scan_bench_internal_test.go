package routing

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkAutomatonScan measures the automaton alone over 20 KB of
// normalised text with 10, 1,000 and 10,000 patterns.
func BenchmarkAutomatonScan(b *testing.B) {
	words := strings.Fields("please refund the invoice my parcel never arrived and the app shows an error when i try to login with my password")
	r := rand.New(rand.NewPCG(3, 3))
	var tb strings.Builder
	for tb.Len() < 20<<10 {
		tb.WriteString(words[r.IntN(len(words))])
		tb.WriteByte(' ')
	}
	text := tb.String()[:20<<10]
	syl := []string{"ka", "ro", "mi", "tes", "ven", "lo", "pra", "dun", "shi", "el", "qua", "tor", "bri", "zen", "ol", "ux"}
	for _, n := range []int{10, 1000, 10000} {
		seen := map[string]bool{"refund": true, "invoice": true, "error": true, "parcel": true, "password": true}
		pats := []string{"refund", "invoice", "error", "parcel", "password"}
		for len(pats) < n {
			var w strings.Builder
			for range 2 + r.IntN(3) {
				w.WriteString(syl[r.IntN(len(syl))])
			}
			if !seen[w.String()] {
				seen[w.String()] = true
				pats = append(pats, w.String())
			}
		}
		a, err := buildAutomaton(pats)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("patterns=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			hits := 0
			for b.Loop() {
				a.scan(text, func(int, int) { hits++ })
			}
			_ = hits
		})
	}
}

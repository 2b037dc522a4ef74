package routing

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		keepAccents bool
		want        string
	}{
		{name: "ascii lower and spaces", in: "  Hello\tWORLD \r\n again ", want: "hello world again"},
		{name: "accents removed", in: "Café CRÈME brûlée", want: "cafe creme brulee"},
		{name: "accents kept", in: "Café CRÈME", keepAccents: true, want: "café crème"},
		{name: "full width NFKC", in: "ＩＮＶＯＩＣＥ　１２３", want: "invoice 123"},
		{name: "german sharp s folds", in: "Straße", want: "strasse"},
		{name: "ligature", in: "ﬁle", want: "file"},
		{name: "greek final sigma folds", in: "ΣΟΦΟΣ", want: "σοφοσ"},
		{name: "japanese voicing mark kept", in: "ガス", want: "ガス"},
		{name: "half width katakana", in: "ｴﾗｰ", want: "エラー"},
		{name: "invalid utf8", in: "a\xffb", want: "a\uFFFDb"},
		{name: "unicode spaces", in: "a\u00a0\u3000b", want: "a b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := normalizer{keepAccents: tc.keepAccents}.normalize(tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "words and pairs", in: "my invoice, is wrong", want: []string{"my", "invoice", "my invoice", "is", "wrong", "is wrong"}},
		{name: "single letters dropped", in: "a b cd", want: []string{"cd"}},
		{name: "cjk bigrams", in: "请求退款", want: []string{"请", "求", "请求", "退", "求退", "款", "退款"}},
		{name: "mixed scripts", in: "error エラー", want: []string{"error", "エ", "ラ", "エラ", "ー", "ラー"}},
		{name: "punctuation breaks pairs", in: "late. parcel", want: []string{"late", "parcel"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tokens(tc.in, func(s string) { got = append(got, s) })
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBoundaries(t *testing.T) {
	text := "refunds refund 退款中 x-refund"
	assert.True(t, boundaryBefore(text, 0, 'r'))
	assert.False(t, boundaryAfter(text, 6, 'd'), "refund inside refunds")
	assert.True(t, boundaryAfter(text, 14, 'd'))
	i := strings.Index(text, "退款")
	assert.True(t, boundaryAfter(text, i+len("退款"), '款'), "unspaced scripts match anywhere")
	j := strings.LastIndex(text, "refund")
	assert.True(t, boundaryBefore(text, j, 'r'), "hyphen is a boundary")
}

// naiveFind returns every (pattern, end) occurrence by brute force.
func naiveFind(patterns []string, text string) [][2]int {
	var out [][2]int
	for end := 1; end <= len(text); end++ {
		for p, s := range patterns {
			if end >= len(s) && text[end-len(s):end] == s {
				out = append(out, [2]int{p, end})
			}
		}
	}
	return out
}

func TestAutomatonMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "c", "é", "退", " "}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for round := range 200 {
		seen := map[string]bool{}
		var pats []string
		for len(pats) < 1+rng.IntN(12) {
			w := word(1 + rng.IntN(4))
			if !seen[w] {
				seen[w] = true
				pats = append(pats, w)
			}
		}
		a, err := buildAutomaton(pats)
		require.NoError(t, err)
		text := word(rng.IntN(60))
		var got [][2]int
		a.scan(text, func(p, end int) { got = append(got, [2]int{p, end}) })
		want := naiveFind(pats, text)
		sortPairs(got)
		sortPairs(want)
		require.Equal(t, want, got, "round %d patterns %q text %q", round, pats, text)
	}
}

func sortPairs(p [][2]int) {
	sort.Slice(p, func(i, j int) bool {
		if p[i][1] != p[j][1] {
			return p[i][1] < p[j][1]
		}
		return p[i][0] < p[j][0]
	})
}

func TestAutomatonErrors(t *testing.T) {
	_, err := buildAutomaton([]string{"a", ""})
	require.ErrorContains(t, err, "pattern 1 is empty")
	_, err = buildAutomaton([]string{"ab", "ab"})
	require.ErrorContains(t, err, "pattern 1 duplicates pattern 0")
	a, err := buildAutomaton(nil)
	require.NoError(t, err)
	n := 0
	a.scan("anything", func(int, int) { n++ })
	assert.Zero(t, n)
	assert.Equal(t, 1, a.states())
}

func TestAutomatonOverlapping(t *testing.T) {
	a, err := buildAutomaton([]string{"he", "she", "his", "hers"})
	require.NoError(t, err)
	var got []string
	pats := []string{"he", "she", "his", "hers"}
	a.scan("ushers", func(p, end int) { got = append(got, pats[p]) })
	assert.Equal(t, []string{"she", "he", "hers"}, got)
}

func TestCutText(t *testing.T) {
	assert.Equal(t, "ab", cutText("ab", 5))
	assert.Equal(t, "a", cutText("a退", 2), "never cuts inside a rune")
	assert.Equal(t, "a退", cutText("a退b", 4))
}

package routing

import (
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// kwEntry is one keyword of one set.
type kwEntry struct {
	set    int
	text   string  // as configured, for explanations
	weight float64 // negative for negative keywords
	// left and right say whether a word boundary is required on that side.
	left, right bool
	first, last rune
}

// kwSet is a compiled keyword set.
type kwSet struct {
	id     string // "keywords:<name>"
	effect Effect
	index  int
}

// keywordScorer scores texts against every keyword set in one pass per part.
// It is safe for concurrent use.
type keywordScorer struct {
	norm          normalizer
	sets          []kwSet
	ac            *automaton
	patEntries    [][]int32 // pattern -> entries
	entries       []kwEntry
	threshold     float64
	subjectWeight float64
	bodyWeight    float64
	maxHits       int32
	scratch       sync.Pool // *kwScratch
}

type kwScratch struct {
	counts  []int32 // per entry, per part
	touched []int32
	hits    []int32 // total hits per entry over both parts
	all     []int32 // entries hit at least once
}

// kwHit is how often one keyword was counted.
type kwHit struct {
	text  string
	count int
	neg   bool
}

// kwResult is the outcome of scoring one mail.
type kwResult struct {
	score   []float64 // per set
	subject []float64 // per set, subject part only
	hits    [][]kwHit // per set, in configuration order
}

// newKeywordScorer compiles entries (already normalised, with their
// patterns) into a scorer.
func newKeywordScorer(n normalizer, sets []kwSet, patterns []string, patEntries [][]int32, entries []kwEntry,
	threshold, subjectWeight, bodyWeight float64, maxHits int) (*keywordScorer, error) {
	ac, err := buildAutomaton(patterns)
	if err != nil {
		return nil, err
	}
	k := &keywordScorer{
		norm: n, sets: sets, ac: ac, patEntries: patEntries, entries: entries,
		threshold: threshold, subjectWeight: subjectWeight, bodyWeight: bodyWeight, maxHits: int32(maxHits),
	}
	k.scratch.New = func() any {
		return &kwScratch{counts: make([]int32, len(entries)), hits: make([]int32, len(entries))}
	}
	return k, nil
}

// score scores the subject and body of a mail.
func (k *keywordScorer) score(subject, body string) kwResult {
	sc := k.scratch.Get().(*kwScratch)
	res := kwResult{score: make([]float64, len(k.sets)), subject: make([]float64, len(k.sets))}
	k.scanPart(sc, k.norm.normalize(subject), k.subjectWeight, res.score, res.subject)
	k.scanPart(sc, k.norm.normalize(body), k.bodyWeight, res.score, nil)
	if len(sc.all) > 0 {
		res.hits = make([][]kwHit, len(k.sets))
		sort.Slice(sc.all, func(i, j int) bool { return sc.all[i] < sc.all[j] })
		for _, e := range sc.all {
			en := &k.entries[e]
			res.hits[en.set] = append(res.hits[en.set], kwHit{text: en.text, count: int(sc.hits[e]), neg: en.weight < 0})
			sc.hits[e] = 0
		}
		sc.all = sc.all[:0]
	}
	k.scratch.Put(sc)
	return res
}

// scanPart scans one normalised part, adding weight × partWeight per counted
// occurrence to score (and to part, if not nil).
func (k *keywordScorer) scanPart(sc *kwScratch, text string, partWeight float64, score, part []float64) {
	k.ac.scan(text, func(pat, end int) {
		start := end - k.ac.plen[pat]
		lb, rb := -1, -1 // boundary results, computed once per occurrence
		for _, e := range k.patEntries[pat] {
			en := &k.entries[e]
			if en.left {
				if lb < 0 {
					lb = b2i(boundaryBefore(text, start, en.first))
				}
				if lb == 0 {
					continue
				}
			}
			if en.right {
				if rb < 0 {
					rb = b2i(boundaryAfter(text, end, en.last))
				}
				if rb == 0 {
					continue
				}
			}
			if sc.counts[e] >= k.maxHits {
				continue
			}
			if sc.counts[e] == 0 {
				sc.touched = append(sc.touched, e)
			}
			sc.counts[e]++
			if sc.hits[e] == 0 {
				sc.all = append(sc.all, e)
			}
			sc.hits[e]++
			v := en.weight * partWeight
			score[en.set] += v
			if part != nil {
				part[en.set] += v
			}
		}
	})
	for _, e := range sc.touched {
		sc.counts[e] = 0
	}
	sc.touched = sc.touched[:0]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// best returns the winning set, or -1 when no score reaches the threshold,
// and the order of sets with a non-zero score or any hit, best first. Ties
// are broken by the higher subject score, then by declaration order.
func (k *keywordScorer) best(r kwResult) (int, []int) {
	var order []int
	for i := range k.sets {
		if r.score[i] != 0 || (r.hits != nil && len(r.hits[i]) > 0) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if r.score[i] != r.score[j] {
			return r.score[i] > r.score[j]
		}
		if r.subject[i] != r.subject[j] {
			return r.subject[i] > r.subject[j]
		}
		return i < j
	})
	if len(order) == 0 || r.score[order[0]] < k.threshold {
		return -1, order
	}
	return order[0], order
}

// keywordPattern turns a configured keyword into its normalised pattern and
// boundary flags. ok is false when nothing is left to match.
func keywordPattern(n normalizer, text string) (pat string, left, right, ok bool) {
	t := strings.TrimSpace(text)
	left, right = true, true
	if strings.HasPrefix(t, "*") {
		left = false
		t = t[1:]
	}
	if strings.HasSuffix(t, "*") {
		right = false
		t = t[:len(t)-1]
	}
	pat = n.normalize(t)
	if pat == "" || strings.Contains(pat, "*") {
		return "", false, false, false
	}
	return pat, left, right, true
}

// firstLast returns the first and last runes of s.
func firstLast(s string) (rune, rune) {
	f, _ := utf8.DecodeRuneInString(s)
	l, _ := utf8.DecodeLastRuneInString(s)
	return f, l
}

package routing

import (
	"errors"
	"fmt"
)

// automaton finds every occurrence of a set of byte patterns in one pass over
// a text, whatever the number of patterns: an Aho–Corasick automaton compiled
// to a full DFA (every state has a transition for every input class, failure
// links folded in), so scanning costs one table lookup per input byte plus
// the matches reported.
//
// Bytes are mapped to equivalence classes first (every byte that occurs in no
// pattern shares class 0), which keeps the table at states × classes entries.
// An automaton is immutable after build and safe for concurrent use.
type automaton struct {
	class  [256]uint16
	nclass int
	// delta[s*nclass+c] is the state after reading a byte of class c in s
	// (used while building).
	delta []int32
	// out is delta with the targets that end a pattern (directly or through
	// their suffix chain) stored as ^state, so scanning needs one load per
	// byte to know whether anything matched.
	out []int32
	// pat[s] is the pattern ending at state s, or -1.
	pat []int32
	// first[s] is the first state on s's suffix chain (s included) that
	// ends a pattern, or -1; link[s] is the next one after s, or -1.
	first []int32
	link  []int32
	// plen[p] is the length in bytes of pattern p.
	plen []int
}

// maxAutomatonTable bounds the transition table (entries of 4 bytes).
const maxAutomatonTable = 1 << 25

var errAutomatonTooLarge = errors.New("keyword automaton too large")

// buildAutomaton compiles patterns. Pattern ids are their indexes; patterns
// must be non-empty and distinct.
func buildAutomaton(patterns []string) (*automaton, error) {
	a := &automaton{plen: make([]int, len(patterns))}
	total := 1
	for i, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("pattern %d is empty", i)
		}
		a.plen[i] = len(p)
		total += len(p)
		for j := 0; j < len(p); j++ {
			if a.class[p[j]] == 0 {
				a.nclass++
				a.class[p[j]] = uint16(a.nclass)
			}
		}
	}
	a.nclass++ // class 0: bytes in no pattern
	nc := a.nclass
	if total*nc > maxAutomatonTable {
		return nil, fmt.Errorf("%w: %d states × %d byte classes", errAutomatonTooLarge, total, nc)
	}
	a.delta = make([]int32, nc, total*nc)
	for i := range a.delta {
		a.delta[i] = -1
	}
	a.pat = []int32{-1}
	// Trie.
	for id, p := range patterns {
		s := 0
		for j := 0; j < len(p); j++ {
			c := int(a.class[p[j]])
			t := a.delta[s*nc+c]
			if t < 0 {
				t = int32(len(a.pat))
				a.delta[s*nc+c] = t
				a.pat = append(a.pat, -1)
				for k := 0; k < nc; k++ {
					a.delta = append(a.delta, -1)
				}
			}
			s = int(t)
		}
		if a.pat[s] >= 0 {
			return nil, fmt.Errorf("pattern %d duplicates pattern %d", id, a.pat[s])
		}
		a.pat[s] = int32(id)
	}
	n := len(a.pat)
	fail := make([]int32, n)
	a.first = make([]int32, n)
	a.link = make([]int32, n)
	for i := range a.first {
		a.first[i], a.link[i] = -1, -1
	}
	if a.pat[0] >= 0 {
		a.first[0] = 0
	}
	// Breadth-first: a state's failure state is shallower, so its row is
	// complete when the state is processed.
	queue := make([]int32, 0, n)
	for c := 0; c < nc; c++ {
		t := a.delta[c]
		if t < 0 {
			a.delta[c] = 0
			continue
		}
		fail[t] = 0
		queue = append(queue, t)
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		f := fail[s]
		// Output links.
		if a.pat[f] >= 0 {
			a.link[s] = f
		} else {
			a.link[s] = a.link[f]
		}
		if a.pat[s] >= 0 {
			a.first[s] = s
		} else {
			a.first[s] = a.link[s]
		}
		row, frow := int(s)*nc, int(f)*nc
		for c := 0; c < nc; c++ {
			t := a.delta[row+c]
			if t < 0 {
				a.delta[row+c] = a.delta[frow+c]
				continue
			}
			fail[t] = a.delta[frow+c]
			queue = append(queue, t)
		}
	}
	// Renumber states in breadth-first order: the shallow states, where a
	// scan spends most of its time, then share cache lines.
	order := append([]int32{0}, queue...)
	renum := make([]int32, n)
	for newID, old := range order {
		renum[old] = int32(newID)
	}
	a.out = make([]int32, len(a.delta))
	pat, first, link := make([]int32, n), make([]int32, n), make([]int32, n)
	for newID, old := range order {
		pat[newID] = a.pat[old]
		first[newID], link[newID] = remap(renum, a.first[old]), remap(renum, a.link[old])
		row, orow := newID*nc, int(old)*nc
		for c := 0; c < nc; c++ {
			t := a.delta[orow+c]
			if a.first[t] >= 0 {
				a.out[row+c] = ^renum[t]
			} else {
				a.out[row+c] = renum[t]
			}
		}
	}
	a.pat, a.first, a.link, a.delta = pat, first, link, nil
	return a, nil
}

func remap(renum []int32, s int32) int32 {
	if s < 0 {
		return s
	}
	return renum[s]
}

// states returns the number of automaton states.
func (a *automaton) states() int { return len(a.pat) }

// scan calls fn(pattern, end) for every occurrence of every pattern in text,
// in order of end position (end is exclusive); occurrences ending at the same
// position are reported longest first.
func (a *automaton) scan(text string, fn func(pat int, end int)) {
	nc := uint32(a.nclass)
	class := &a.class
	delta, first, link, pat := a.out, a.first, a.link, a.pat
	s := uint32(0)
	for i := 0; i < len(text); i++ {
		t := delta[s*nc+uint32(class[text[i]])]
		if t >= 0 {
			s = uint32(t)
			continue
		}
		s = uint32(^t)
		for o := first[s]; o >= 0; o = link[o] {
			fn(int(pat[o]), i+1)
		}
	}
}

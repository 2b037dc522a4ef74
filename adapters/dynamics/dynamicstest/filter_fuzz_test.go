package dynamicstest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzFilter checks that no $filter makes the parser or the evaluator
// panic, and that an accepted filter evaluates without error.
func FuzzFilter(f *testing.F) {
	for _, seed := range []string{
		"lastname eq 'O''Brien'", "contains(lastname,'a[_]b')", "not (statecode eq 0 or emailaddress1 ne null)",
		"lastname eq 'abc", "startswith(lastname,'[^a-c]%')", "createdon gt 2024-01-01T00:00:00Z", "((",
		"contains(lastname,'[')", "firstname eq lastname", "contactid eq 00000000-0000-0000-0000-000000000001",
	} {
		f.Add(seed)
	}
	e := builtinSchema()["contacts"]
	recs := []record{
		{"contactid": "00000000-0000-0000-0000-000000000001", "lastname": "O'Brien", "statecode": 0, "createdon": "2024-02-01T00:00:00Z"},
		{"contactid": "00000000-0000-0000-0000-000000000002", "firstname": "a_b", "lastname": "a_b"},
	}
	f.Fuzz(func(t *testing.T, q string) {
		match, err := compileFilter(e, q)
		if err != nil {
			if match != nil {
				t.Fatalf("compileFilter(%q) returned a predicate and an error", q)
			}
			return
		}
		for _, r := range recs {
			match(r)
		}
	})
}

func TestLikeRegexp(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{pattern: "a_c", s: "abc", want: true},
		{pattern: "a[_]c", s: "abc", want: false},
		{pattern: "a[_]c", s: "a_c", want: true},
		{pattern: "[a-c]x", s: "Bx", want: true},
		{pattern: "[^a-c]x", s: "dx", want: true},
		{pattern: "[^a-c]x", s: "ax", want: false},
		{pattern: "[a^]", s: "^", want: true},
		{pattern: "[a^]", s: `\`, want: false},
		{pattern: "[-a]", s: "-", want: true},
		{pattern: "[%]", s: "%", want: true},
		{pattern: "[%]", s: "x", want: false},
		{pattern: "a[", s: "a[", want: true},
		{pattern: "(x).*", s: "(x).*", want: true},
		{pattern: "(x).*", s: "(x)ab", want: false},
		{pattern: "%", s: "", want: true},
	}
	for _, tc := range tests {
		assert.Equalf(t, tc.want, likeRegexp(tc.pattern).MatchString(tc.s), "LIKE %q matches %q", tc.pattern, tc.s)
	}
}

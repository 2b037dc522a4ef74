package crmlookup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
)

// odata is an OData-like dialect: quotes doubled, no backslash escapes.
var odata = &crmlookup.Dialect{Name: "OData",
	Escape: func(s string, pattern bool) string {
		s = strings.ReplaceAll(s, "'", "''")
		if pattern {
			s = strings.NewReplacer("[", "[[]", "%", "[%]", "_", "[_]").Replace(s)
		}
		return s
	},
	Pattern: func(before string) bool { return strings.HasSuffix(strings.TrimSpace(before), "contains(x,") },
}

func TestTemplate(t *testing.T) {
	tpl, err := crmlookup.Compile(`a eq 'it''s {{sender}}' or contains(x,'{{domain}}')`, odata)
	require.NoError(t, err)
	in := &crmlookup.Input{Sender: "o'b_r@ex_a.com"}
	assert.Equal(t, `a eq 'it''s o''b_r@ex_a.com' or contains(x,'ex[_]a.com')`, tpl.Render(in.Var))
	for _, bad := range []string{`a eq {{sender}}`, `a eq '{{nope}}'`, `a eq '{{sender}}`, `a eq '{{sender}`} {
		_, err := crmlookup.Compile(bad, odata)
		assert.Error(t, err, bad)
	}
}

func TestTake(t *testing.T) {
	o, r := crmlookup.Take([]int{1, 2}, "")
	assert.Equal(t, crmlookup.Multiple, o)
	assert.Equal(t, []int{1}, r)
	_, r = crmlookup.Take([]int{1, 2}, crmlookup.TakeAll)
	assert.Len(t, r, 2)
	_, r = crmlookup.Take([]int{1, 2}, crmlookup.TakeNone)
	assert.Empty(t, r)
	o, _ = crmlookup.Take([]int(nil), "")
	assert.Equal(t, crmlookup.None, o)
}

func TestCache(t *testing.T) {
	now := time.Unix(0, 0)
	c := crmlookup.NewCache(time.Minute, func() time.Time { return now })
	n := 0
	f := func() ([]int, error) { n++; return []int{n}, nil }
	v, _ := crmlookup.Get(c, t.Context(), "k", f)
	v2, _ := crmlookup.Get(c, t.Context(), "k", f)
	assert.Equal(t, v, v2)
	now = now.Add(2 * time.Minute)
	v3, _ := crmlookup.Get(c, t.Context(), "k", f)
	assert.Equal(t, []int{2}, v3)
}

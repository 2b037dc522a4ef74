package authres

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	id, rs := Parse(`mx.google.com (version 1);
       dkim=pass header.i=@example.com header.s=20230601 header.b=abc;
       spf=pass (google.com: domain of bob@example.com designates 1.2.3.4 as permitted sender; (nested)) smtp.mailfrom=bob@example.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com;
       arc/1="none"`)
	assert.Equal(t, "mx.google.com", id)
	require.Len(t, rs, 4)
	assert.Equal(t, "dkim", rs[0].Method)
	assert.Equal(t, "pass", rs[0].Result)
	assert.Equal(t, "@example.com", rs[0].Props["header.i"])
	assert.Equal(t, "spf", rs[1].Method)
	assert.Equal(t, "bob@example.com", rs[1].Props["smtp.mailfrom"])
	assert.Equal(t, "example.com", rs[2].Props["header.from"])
	assert.Equal(t, "arc", rs[3].Method)
	assert.Equal(t, "none", rs[3].Result)

	id, rs = Parse("example.org 1; none")
	assert.Equal(t, "example.org", id)
	assert.Empty(t, rs)
	id, rs = Parse("")
	assert.Empty(t, id)
	assert.Empty(t, rs)
	_, rs = Parse("x; ((unbalanced; dkim=pass")
	assert.Empty(t, rs)
}

func FuzzParse(f *testing.F) {
	f.Add("mx.example; dkim=pass header.d=example.com (comment) ; spf=fail smtp.mailfrom=\"a;b\"@x")
	f.Add("(()\\\"; ;;=")
	f.Fuzz(func(t *testing.T, v string) {
		id, rs := Parse(v)
		for _, r := range rs {
			if r.AuthServID != id || r.Props == nil {
				t.Fatalf("inconsistent result %+v for %q", r, v)
			}
		}
	})
}

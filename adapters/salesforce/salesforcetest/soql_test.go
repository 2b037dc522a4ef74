package salesforcetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func records(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	res := decode(t, b).(map[string]any)
	var out []map[string]any
	for _, r := range res["records"].([]any) {
		out = append(out, r.(map[string]any))
	}
	assert.Equal(t, float64(len(out)), res["totalSize"])
	assert.Equal(t, true, res["done"])
	return out
}

func TestSOQLLiterals(t *testing.T) {
	c := newClient(t, nil)
	c.s.Insert("Contact", map[string]any{"LastName": "x", "Email": "a\n\r\t\b\f\"'\\é"})
	c.s.Insert("Contact", map[string]any{"LastName": "50%_off"})
	c.s.Insert("Contact", map[string]any{"LastName": "50x_offy"})
	tests := []struct {
		name string
		q    string
		n    int    // matching records
		code string // error
	}{
		{name: "all escapes", q: `SELECT Id FROM Contact WHERE Email = 'a\n\r\t\b\f\"\'\\\u00e9'`, n: 1},
		{name: "upper-case escapes", q: `SELECT Id FROM Contact WHERE Email = 'A\N\R\T\B\F\"\'\\\u00E9'`, n: 1},
		{name: "like escapes", q: `SELECT Id FROM Contact WHERE LastName LIKE '50\%\_off'`, n: 1},
		{name: "like wildcards", q: `SELECT Id FROM Contact WHERE LastName LIKE '50__off%'`, n: 2},
		{name: "like escaped quote", q: `SELECT Id FROM Contact WHERE Email LIKE '%\'\\%'`, n: 1},
		{name: "invalid escape", q: `SELECT Id FROM Contact WHERE Email = 'a\x'`, code: "MALFORMED_QUERY"},
		{name: "underscore escape outside like", q: `SELECT Id FROM Contact WHERE LastName = '50\_off'`, code: "MALFORMED_QUERY"},
		{name: "percent escape outside like", q: `SELECT Id FROM Contact WHERE LastName IN ('50\%')`, code: "MALFORMED_QUERY"},
		{name: "short unicode", q: `SELECT Id FROM Contact WHERE LastName = '\u00e'`, code: "MALFORMED_QUERY"},
		{name: "unterminated", q: `SELECT Id FROM Contact WHERE LastName = 'abc`, code: "MALFORMED_QUERY"},
		{name: "trailing backslash", q: `SELECT Id FROM Contact WHERE LastName = 'abc\`, code: "MALFORMED_QUERY"},
		{name: "stray quote", q: `SELECT Id FROM Contact WHERE LastName = 'O'Brien'`, code: "MALFORMED_QUERY"},
		{name: "trailing garbage", q: `SELECT Id FROM Contact WHERE LastName = 'x' garbage`, code: "MALFORMED_QUERY"},
		{name: "double quotes", q: `SELECT Id FROM Contact WHERE LastName = "x"`, code: "MALFORMED_QUERY"},
		{name: "mixed and or", q: `SELECT Id FROM Contact WHERE LastName = 'x' AND Email = 'y' OR LastName = 'z'`, code: "MALFORMED_QUERY"},
		{name: "unknown field", q: `SELECT Nope FROM Contact`, code: "INVALID_FIELD"},
		{name: "unknown where field", q: `SELECT Id FROM Contact WHERE Nope = 'x'`, code: "INVALID_FIELD"},
		{name: "unknown object", q: `SELECT Id FROM Nope`, code: "INVALID_TYPE"},
		{name: "group object", q: `SELECT Id FROM Group WHERE Type = 'Queue' AND Name = 'nothing'`, n: 0},
		{name: "reserved word object", q: `SELECT Id FROM Where`, code: "MALFORMED_QUERY"},
		{name: "quoted boolean", q: `SELECT Id FROM Case WHERE IsClosed = 'true'`, code: "INVALID_QUERY_FILTER_OPERATOR"},
		{name: "bad id", q: `SELECT Id FROM Case WHERE Id = 'abc'`, code: "INVALID_QUERY_FILTER_OPERATOR"},
		{name: "long text filter", q: `SELECT Id FROM Case WHERE Description = 'abc'`, code: "INVALID_FIELD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b := c.query(tc.q)
			if tc.code != "" {
				require.Equal(t, 400, st, string(b))
				assert.Equal(t, tc.code, errorCode(t, b), string(b))
				return
			}
			require.Equal(t, 200, st, string(b))
			assert.Len(t, records(t, b), tc.n)
		})
	}
}

// The classic injection: a value "' OR Name LIKE '%" pasted unescaped into
// "Email = '...'" turns the filter into one that matches every contact. The
// fake parses it the way the attacker intends, so adapter tests can show
// that their escaping prevents it.
func TestSOQLHostileQuery(t *testing.T) {
	c := newClient(t, nil)
	c.s.Insert("Contact", map[string]any{"LastName": "A", "Email": "a@example.com"})
	c.s.Insert("Contact", map[string]any{"LastName": "B", "Email": "b@example.com"})
	hostile := `' OR Name LIKE '%`
	st, b := c.query(fmt.Sprintf("SELECT Id FROM Contact WHERE Email = '%s'", hostile))
	require.Equal(t, 200, st, string(b))
	assert.Len(t, records(t, b), 2)

	escaped := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(hostile)
	st, b = c.query(fmt.Sprintf("SELECT Id FROM Contact WHERE Email = '%s'", escaped))
	require.Equal(t, 200, st, string(b))
	assert.Empty(t, records(t, b))
}

func TestSOQLEvaluation(t *testing.T) {
	c := newClient(t, nil)
	acc := c.s.Insert("Account", map[string]any{"Name": "Acme"})
	c.s.Insert("Contact", map[string]any{"LastName": "Cole", "FirstName": "Ann", "Email": "ANN@example.com", "AccountId": acc})
	c.s.Insert("Contact", map[string]any{"LastName": "Bell", "Email": "bob@example.com"})
	c.s.Insert("Contact", map[string]any{"LastName": "Adams"})
	caseID := c.s.Insert("Case", map[string]any{"Subject": "s", "Status": "Closed"})
	c.s.Insert("Case", map[string]any{"Subject": "t"})
	c.s.Insert("EmailMessage", map[string]any{"ParentId": caseID, "MessageIdentifier": "<m1@x>"})

	names := func(q string) []string {
		t.Helper()
		st, b := c.query(q)
		require.Equal(t, 200, st, string(b))
		var out []string
		for _, r := range records(t, b) {
			out = append(out, fmt.Sprint(r["LastName"]))
		}
		return out
	}
	assert.Equal(t, []string{"Cole"}, names(`SELECT LastName FROM Contact WHERE Email = 'ann@EXAMPLE.com'`))
	assert.Equal(t, []string{"Adams"}, names(`select lastname from contact where email = null`))
	assert.Equal(t, []string{"Bell", "Adams"}, names(`SELECT LastName FROM Contact WHERE Email != 'ann@example.com'`))
	assert.Equal(t, []string{"Cole", "Bell"}, names(`SELECT LastName FROM Contact WHERE Email IN ('Ann@example.com', 'bob@example.com') ORDER BY LastName DESC`))
	assert.Equal(t, []string{"Adams"}, names(`SELECT LastName FROM Contact WHERE NOT (Email LIKE '%@example.com' OR LastName = 'x')`))
	assert.Equal(t, []string{"Adams", "Bell"}, names(`SELECT LastName FROM Contact ORDER BY LastName ASC LIMIT 2`))
	assert.Equal(t, []string{"Cole"}, names(`SELECT LastName FROM Contact WHERE AccountId = '`+acc[:15]+`' AND Name = 'ann cole'`))
	assert.Equal(t, []string{"Bell"}, names(`SELECT LastName FROM Contact ORDER BY LastName LIMIT 1 OFFSET 1`))

	st, b := c.query(`SELECT Id, CaseNumber FROM Case WHERE IsClosed = true`)
	require.Equal(t, 200, st, string(b))
	recs := records(t, b)
	require.Len(t, recs, 1)
	assert.Equal(t, caseID, recs[0]["Id"])
	assert.Equal(t, "/services/data/v62.0/sobjects/Case/"+caseID, recs[0]["attributes"].(map[string]any)["url"])

	st, b = c.query(`SELECT Id FROM Case WHERE Id IN (SELECT ParentId FROM EmailMessage WHERE MessageIdentifier IN ('<m1@x>'))`)
	require.Equal(t, 200, st, string(b))
	assert.Len(t, records(t, b), 1)

	st, b = c.query(`SELECT COUNT() FROM Contact WHERE CreatedDate < 2999-01-01T00:00:00Z`)
	require.Equal(t, 200, st, string(b))
	assert.Equal(t, float64(3), decode(t, b).(map[string]any)["totalSize"])
}

func TestLikeMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{pattern: "%", s: "", want: true},
		{pattern: "a%c", s: "abbbc", want: true},
		{pattern: "a%c", s: "abbbd", want: false},
		{pattern: "_b%", s: "AB", want: true},
		{pattern: `100\%`, s: "100%", want: true},
		{pattern: `100\%`, s: "1000", want: false},
		{pattern: "%x%y", s: "axbxcy", want: true},
	}
	for _, tc := range tests {
		p, err := compileLike(tc.pattern)
		require.Nil(t, err)
		assert.Equal(t, tc.want, matchLike(p, tc.s), "LIKE %q on %q", tc.pattern, tc.s)
	}
}

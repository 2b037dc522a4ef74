package dynamicstest_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// query runs GET contacts?$filter=f and returns the last names, in order.
func (c *client) query(set, filter, extra string) (result, []string) {
	c.t.Helper()
	q := "$filter=" + url.QueryEscape(filter)
	if extra != "" {
		q += "&" + extra
	}
	r := c.do("GET", set+"?"+q, nil)
	if r.status != http.StatusOK {
		return r, nil
	}
	var names []string
	for _, v := range r.json(c.t)["value"].([]any) {
		m := v.(map[string]any)
		n, _ := m["lastname"].(string)
		names = append(names, n)
	}
	return r, names
}

func TestFilter(t *testing.T) {
	c := newClient(t, nil)
	for _, p := range []struct{ first, last, email string }{
		{"Ann", "O'Brien", "ann@example.com"},
		{"Bob", "a_b", "bob@example.com"},
		{"Cy", "axb", "cy_x@example.org"},
		{"Di", "' or 1 eq 1", ""},
		{"Ed", "100%", "ed@example.com"},
	} {
		f := map[string]any{"firstname": p.first, "lastname": p.last}
		if p.email != "" {
			f["emailaddress1"] = p.email
		}
		c.s.Insert("contacts", f)
	}
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{name: "doubled quote", filter: "lastname eq 'O''Brien'", want: []string{"O'Brien"}},
		{name: "eq is case-insensitive", filter: "lastname eq 'o''brien'", want: []string{"O'Brien"}},
		{name: "hostile literal stays one literal", filter: "lastname eq ''' or 1 eq 1'", want: []string{"' or 1 eq 1"}},
		{name: "hostile literal matches nothing else", filter: "firstname eq 'Ann'' or firstname ne ''x'", want: nil},
		{name: "contains underscore is a wildcard", filter: "contains(lastname,'a_b')", want: []string{"a_b", "axb"}},
		{name: "bracketed underscore is literal", filter: "contains(lastname,'a[_]b')", want: []string{"a_b"}},
		{name: "percent is a wildcard", filter: "startswith(lastname,'1%')", want: []string{"100%"}},
		{name: "bracketed percent is literal", filter: "endswith(lastname,'[%]')", want: []string{"100%"}},
		{name: "endswith", filter: "endswith(emailaddress1,'.org')", want: []string{"axb"}},
		{name: "and or not parens", filter: "(firstname eq 'Ann' or firstname eq 'Bob') and not contains(emailaddress1,'bob')", want: []string{"O'Brien"}},
		{name: "null", filter: "emailaddress1 eq null", want: []string{"' or 1 eq 1"}},
		{name: "ne null", filter: "emailaddress1 ne null and statecode eq 0", want: []string{"O'Brien", "a_b", "axb", "100%"}},
		{name: "ne skips nulls (SQL semantics)", filter: "emailaddress1 ne 'bob@example.com'", want: []string{"O'Brien", "axb", "100%"}},
		{name: "not skips nulls", filter: "not contains(emailaddress1,'example.com')", want: []string{"axb"}},
		{name: "null or true", filter: "emailaddress1 eq 'x' or firstname eq 'Di'", want: []string{"' or 1 eq 1"}},
		{name: "column to column", filter: "firstname eq lastname or firstname lt lastname", want: []string{"O'Brien"}},
		{name: "ordering", filter: "firstname ge 'C' and firstname lt 'E'", want: []string{"axb", "' or 1 eq 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, got := c.query("contacts", tc.filter, "")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, tc.want, got)
		})
	}

	_, got := c.query("contacts", "statecode eq 0", "$orderby=firstname%20desc&$top=2&$select=lastname")
	assert.Equal(t, []string{"100%", "' or 1 eq 1"}, got)
	id := c.s.Records("contacts")[0]["contactid"].(string)
	_, got = c.query("contacts", "contactid eq "+id, "")
	assert.Equal(t, []string{"O'Brien"}, got)
}

func TestFilterRejected(t *testing.T) {
	c := newClient(t, nil)
	tests := []struct {
		name   string
		filter string
		msg    string
	}{
		{name: "unpaired quote", filter: "lastname eq 'O'Brien'"},
		{name: "unterminated", filter: "lastname eq 'abc", msg: "There is an unterminated literal at position 12 in 'lastname eq 'abc'."},
		{name: "trailing garbage", filter: "lastname eq 'a' xyz"},
		{name: "trailing paren", filter: "lastname eq 'a')"},
		{name: "unknown function", filter: "substringof('a',lastname)", msg: "unknown function"},
		{name: "unknown property", filter: "nope eq 'a'", msg: "Could not find a property named 'nope'"},
		{name: "type mismatch", filter: "statecode eq '0'", msg: "incompatible types"},
		{name: "missing operand", filter: "lastname eq"},
		{name: "dangling and", filter: "lastname eq 'a' and"},
		{name: "literal on the left", filter: "1 eq 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := c.query("contacts", tc.filter, "")
			require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
			assert.Equal(t, "0x80060888", r.code(t))
			if tc.msg != "" {
				assert.Contains(t, string(r.body), tc.msg)
			}
		})
	}
	r, _ := c.query("contacts", "lastname eq 'a' xyz", "")
	assert.Contains(t, string(r.body), "lastname eq 'a' xyz", "the message names the query")
}

// A '+' the client did not encode decodes to a space, as on the real service.
func TestFilterPlusIsSpace(t *testing.T) {
	c := newClient(t, nil)
	c.s.Insert("contacts", map[string]any{"lastname": "a+b", "emailaddress1": "a+b@example.com"})
	r := c.do("GET", "contacts?$filter=emailaddress1%20eq%20'a+b@example.com'", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Empty(t, r.json(t)["value"])
	r = c.do("GET", "contacts?$filter=emailaddress1%20eq%20'a%2Bb@example.com'", nil)
	assert.Len(t, r.json(t)["value"], 1)
}

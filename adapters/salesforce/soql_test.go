package salesforce_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
)

// hostile are values that try to leave a SOQL string literal.
var hostile = []struct {
	name, in, quoted, like string
}{
	{name: "or-like", in: `' OR Name LIKE '%`, quoted: `'\' OR Name LIKE \'%'`, like: `'\' OR Name LIKE \'\%'`},
	{name: "backslashes", in: `a\' b\\ c\`, quoted: `'a\\\' b\\\\ c\\'`, like: `'a\\\' b\\\\ c\\'`},
	{name: "unicode quotes", in: "O’Brien ʼx＇", quoted: "'O’Brien ʼx＇'", like: "'O’Brien ʼx＇'"},
	{name: "newlines", in: "a\nb\rc\td\be\ff", quoted: `'a\nb\rc\td\be\ff'`, like: `'a\nb\rc\td\be\ff'`},
	{name: "double quote", in: `say "hi"`, quoted: `'say \"hi\"'`, like: `'say \"hi\"'`},
	{name: "braces", in: "{{sender}}", quoted: "'{{sender}}'", like: "'{{sender}}'"},
	{name: "wildcards", in: "50%_off", quoted: "'50%_off'", like: `'50\%\_off'`},
	{name: "control", in: "a\x00b\x1b", quoted: `'a\u0000b\u001b'`, like: `'a\u0000b\u001b'`},
}

func TestQuoteSOQL(t *testing.T) {
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.quoted, salesforce.QuoteSOQL(tc.in))
			assert.Equal(t, tc.like, salesforce.QuoteSOQLLike(tc.in))
		})
	}
}

func TestTemplateRefusesUnquotedVariables(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{name: "bare", src: "Email = {{sender}}"},
		{name: "after literal", src: "Email = 'x' OR {{sender}} = 'y'"},
		{name: "unknown", src: "Email = '{{password}}'"},
		{name: "open literal", src: "Email = '{{sender}}"},
		{name: "double quotes", src: `Email = "{{sender}}"`},
		{name: "unclosed", src: "Email = '{{sender'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := salesforce.CompileTemplate(tc.src)
			assert.Error(t, err)
		})
	}
}

func TestTemplateRender(t *testing.T) {
	tpl, err := salesforce.CompileTemplate(`Email = '{{sender}}' OR Website LIKE '%{{domain}}%' OR Subject__c = 'Re: \'{{subject}}\'' OR Key__c = '{{header:X-Customer}}'`)
	require.NoError(t, err)
	vars := map[string]string{
		"sender":            `x' OR Name LIKE '%`,
		"domain":            "a_b%.com",
		"subject":           "{{sender}}\n",
		"header:X-Customer": `\'`,
	}
	got := tpl.Render(func(n string) string { return vars[n] })
	assert.Equal(t, `Email = 'x\' OR Name LIKE \'%' OR Website LIKE '%a\_b\%.com%' OR Subject__c = 'Re: \'{{sender}}\n\'' OR Key__c = '\\\''`, got)
}

package mailcase_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/internal/charset"
	"github.com/emailcrm/emailcrm/internal/mimetree"
	"github.com/emailcrm/emailcrm/mailcase"
)

// TestProblemNamesMatchFormatPackages: the Problem names and header limits
// mailcase documents are the ones the format packages record and apply.
func TestProblemNamesMatchFormatPackages(t *testing.T) {
	pairs := []struct{ exported, internal string }{
		{mailcase.ProblemMalformedHeader, mimetree.ProblemMalformedHeader},
		{mailcase.ProblemMissingBoundary, mimetree.ProblemMissingBoundary},
		{mailcase.ProblemMalformedBase64, mimetree.ProblemMalformedBase64},
		{mailcase.ProblemMalformedQP, mimetree.ProblemMalformedQP},
		{mailcase.ProblemContentEncoding, mimetree.ProblemContentEncoding},
		{mailcase.ProblemNestingTooDeep, mimetree.ProblemNestingTooDeep},
		{mailcase.ProblemTooManyParts, mimetree.ProblemTooManyParts},
		{mailcase.ProblemParserPanic, mimetree.ProblemParserPanic},
		{mailcase.ProblemFieldTruncated, mimetree.ProblemFieldTruncated},
		{mailcase.ProblemTooManyFields, mimetree.ProblemTooManyFields},
		{mailcase.ProblemMissingSeparator, mimetree.ProblemMissingSeparator},
		{mailcase.ProblemBareCR, mimetree.ProblemBareCR},
		{mailcase.ProblemCharset, charset.ProblemCharset},
		{mailcase.ProblemCharsetDetected, charset.ProblemCharsetDetected},
	}
	for _, p := range pairs {
		assert.Equal(t, p.exported, p.internal)
	}
	assert.Equal(t, mailcase.MaxFieldBytes, mimetree.MaxFieldBytes)
	assert.Equal(t, mailcase.MaxHeaderFields, mimetree.MaxHeaderFields)
}

package dsn

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusBlocks_Bounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; u@b.example\nDiagnostic-Code: smtp; x\n")
	for sb.Len() < 2*MaxStatusBytes {
		sb.WriteString(" yyyyyyyy\n")
	}
	sb.WriteString("\nFinal-Recipient: rfc822; late@b.example\n")
	blocks := statusBlocks([]byte(sb.String()))
	require.Len(t, blocks, 3)
	assert.Equal(t, "rfc822; late@b.example", blocks[2]["final-recipient"])
	assert.Equal(t, "dns; mx.example", blocks[0]["reporting-mta"])
	diag := blocks[1]["diagnostic-code"]
	assert.LessOrEqual(t, len(diag), MaxStatusValueBytes, "a folded value is cut")
	assert.True(t, strings.HasPrefix(diag, "smtp; x yyyyyyyy yyyyyyyy"), diag[:40])
	assert.Equal(t, "rfc822; u@b.example", blocks[1]["final-recipient"])

	// A repeated key keeps its first value; its continuation lines are not
	// added to the previous field.
	blocks = statusBlocks([]byte("Action: failed\n more\nAction: delivered\n again\nStatus: 5.0.0\n"))
	require.Len(t, blocks, 1)
	assert.Equal(t, "failed more", blocks[0]["action"])
	assert.Equal(t, "5.0.0", blocks[0]["status"])
}

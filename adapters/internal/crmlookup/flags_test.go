package crmlookup

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetFlags(t *testing.T) {
	var s Switches
	require.NoError(t, SetFlags(url.Values{"no_notes": {"true"}, "no_summary": {"0"}, "other": {"x"}}, s.Flags()))
	assert.Equal(t, Switches{NoNotes: true}, s)
	err := SetFlags(url.Values{"no_transcript": {"maybe"}}, s.Flags())
	assert.EqualError(t, err, "no_transcript=maybe: want true or false")
}

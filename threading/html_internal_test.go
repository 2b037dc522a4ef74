package threading

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// TestResolveRendersHTMLOnce: the token-body and context-id rungs share
// one rendering of the HTML body.
func TestResolveRendersHTMLOnce(t *testing.T) {
	st, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	r, err := NewResolver(st, &Options{Key: []byte("0123456789abcdef-test-key"), Now: func() time.Time { return time.Unix(0, 0) }})
	require.NoError(t, err)
	in := &input{d: &mailcase.Delivery{
		Mailbox: &mailcase.Mailbox{Name: "support", Address: "support@company.example"},
		Message: &mailcase.Message{ID: "a@b.example", Subject: "x", Text: "plain", HTML: "<p>no marker [ref:abc ctx:12.x</p>"},
	}}
	dec, err := r.resolve(t.Context(), in)
	require.NoError(t, err)
	assert.Equal(t, mailcase.ThreadNew, dec.Action)
	assert.Equal(t, 1, in.renders, "the HTML body is rendered once per delivery")
}

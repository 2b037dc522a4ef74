package outbox_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// An answer to an Outlook mail continues its Thread-Index: the parent's
// 22 bytes and one 5-byte child block.
func TestLogEmail_ThreadIndexIsTheParentsChild(t *testing.T) {
	r := newLogRig(t, false)
	parent := append([]byte{0x01, 0xdb, 0x48, 0x2e, 0x11, 0x22}, bytes.Repeat([]byte{0xab}, 16)...)
	pv := base64.StdEncoding.EncodeToString(parent)
	res, err := r.p.Process(t.Context(), inbound("outlook@customer.example", "ann@customer.example", "RE: Printer jams",
		"In-Reply-To: <first@customer.example>\r\nThread-Index: "+pv+"\r\n"), nil)
	require.NoError(t, err)
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action)
	m := r.send(t, "le-outlook")
	got, err := base64.StdEncoding.DecodeString(m.Header.Get("Thread-Index"))
	require.NoError(t, err)
	require.Len(t, got, 27, "22 bytes of the parent + 5 of the child")
	assert.Equal(t, parent, got[:22])
	assert.Equal(t, "<outlook@customer.example>", m.Header.Get("In-Reply-To"))
}

// A Parent that is not a mail of the case is refused: a typo would
// otherwise start a new conversation without a word.
func TestLogEmail_UnknownParent(t *testing.T) {
	r := newLogRig(t, false)
	_, err := r.mailer.LogEmail(t.Context(), &outbox.LogEmail{Key: "le-typo", Case: r.c.ID, Body: "Hello", Parent: "<frist@customer.example>"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "frist@customer.example is not a mail of case "+string(r.c.ID))
	l, _ := r.s.ListOutbox(t.Context(), nil)
	assert.Empty(t, l, "nothing queued")
}

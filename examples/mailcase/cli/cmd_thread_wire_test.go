package cli

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// TestExplain_ThreadingWired checks that explain runs the threading
// package's extractor and resolver.
func TestExplain_ThreadingWired(t *testing.T) {
	mail := filepath.Join("..", "..", "..", "threading", "testdata", "replies", "01-gmail-en.eml")
	out, errOut, code := runCLI(t, "explain", "--json", mail)
	require.Equal(t, 0, code, errOut)
	obj := decodeExplain(t, []byte(out))
	assert.Equal(t, "Hi Anna,\n\nthe printer still shows error E42 after the firmware update.\nCould you send a technician?\n\nThanks,\nJohn", obj["reply_text"])
	thread, ok := obj["thread"].(map[string]any)
	require.True(t, ok, "thread is an object")
	assert.Equal(t, "new", thread["action"])
	assert.Contains(t, thread["reason"], "no thread signal matched")
}

func TestThreadingPlugins_Env(t *testing.T) {
	store, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	t.Setenv(envThreadKey, "00112233445566778899aabbccddeeff")
	r, _, err := threadingPlugins(store, wireConfig{})
	require.NoError(t, err)
	require.NotNil(t, r.Codec(), "a hex key turns the signed signals on")

	t.Setenv(envThreadKey, "short")
	_, _, err = threadingPlugins(store, wireConfig{})
	assert.Error(t, err, "a key shorter than 16 bytes is refused")

	t.Setenv(envThreadKey, "")
	t.Setenv(envClosedPolicy, "sometimes")
	_, _, err = threadingPlugins(store, wireConfig{})
	assert.Error(t, err)

	t.Setenv(envClosedPolicy, "reopen_within")
	t.Setenv(envReopenWithin, "soon")
	_, _, err = threadingPlugins(store, wireConfig{})
	assert.Error(t, err)
	t.Setenv(envReopenWithin, "72h")
	r, _, err = threadingPlugins(store, wireConfig{})
	require.NoError(t, err)
	assert.Nil(t, r.Codec(), "no key: signed signals off")
}

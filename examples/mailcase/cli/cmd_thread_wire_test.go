package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/threading"
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

// TestThreadingPlugins_Config: the key from the environment (a secret),
// the other settings from the configuration file (issue 11 item 6: they
// were MAILCASE_CLOSED_POLICY and MAILCASE_REOPEN_WITHIN).
func TestThreadingPlugins_Config(t *testing.T) {
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
	_, _, err = threadingPlugins(store, wireConfig{Plugins: &pluginConfig{Threading: threadingConfig{ClosedPolicy: "sometimes"}}})
	assert.Error(t, err)

	_, err = parseConfig([]byte("threading: {closed_policy: reopen_within, reopen_within: soon}\nmailboxes: [{name: a}]\n"))
	assert.Error(t, err)
	cfg, err := parseConfig([]byte("threading: {closed_policy: reopen_within, reopen_within: 72h}\nmailboxes: [{name: a}]\n"))
	require.NoError(t, err)
	require.Equal(t, 72*time.Hour, cfg.Mailboxes[0].plugins.Threading.ReopenWithin)
	r, _, err = threadingPlugins(store, wireConfig{Plugins: cfg.Mailboxes[0].plugins})
	require.NoError(t, err)
	assert.Nil(t, r.Codec(), "no key: signed signals off")
}

// threadingPlugins builds the thread resolver the way buildPipeline does
// (emailcrm.NewPipeline over threadingOptions), for tests that inspect it.
func threadingPlugins(store *mailcase.Store, cfg wireConfig) (*threading.Resolver, *threading.Extractor, error) {
	o, err := threadingOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := threading.NewResolver(store, o)
	if err != nil {
		return nil, nil, err
	}
	return r, threading.NewExtractor(nil), nil
}

package cli

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// envThreadKey is the environment variable holding the HMAC key of the
// installation for a command run without a configuration file (a secret:
// with a file, the key is where threading.key_env or key_file says). Hex
// when it is valid hex of at least 32 digits, else raw text of at least 16
// bytes; without it signed Message-IDs and tokens are not recognised. The
// other threading settings come from a configuration file only.
const envThreadKey = "MAILCASE_THREAD_KEY"

// threadKeyFromEnv decodes MAILCASE_THREAD_KEY: hex when it is valid hex
// of at least 32 digits, else the raw bytes.
func threadKeyFromEnv() []byte { return decodeThreadKey(os.Getenv(envThreadKey)) }

// decodeThreadKey decodes a thread key: hex when it is valid hex of at
// least 32 digits, else the raw bytes.
func decodeThreadKey(v string) []byte {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if len(v) >= 32 && len(v)%2 == 0 {
		if b, err := hex.DecodeString(v); err == nil {
			return b
		}
	}
	return []byte(v)
}

// threadingPlugins returns the thread resolver and reply extractor wired
// into the pipeline.
func threadingPlugins(store *mailcase.Store, cfg wireConfig) (*threading.Resolver, *threading.Extractor, error) {
	if cfg.Plugins == nil {
		// No configuration file: the defaults, and the key of the
		// environment.
		return newThreading(store, cfg, threadingConfig{}, threadKeyFromEnv())
	}
	th := cfg.Plugins.Threading
	key, err := secretValue(th.KeyEnv, th.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("threading key: %w", err)
	}
	return newThreading(store, cfg, th, decodeThreadKey(key))
}

// newThreading builds the threading plugins from th (a mailbox's
// threading section, merged by mergePlugins) and key: the mailbox's own
// address plus the own addresses of th (every mailbox of the file).
func newThreading(store *mailcase.Store, cfg wireConfig, th threadingConfig, key []byte) (*threading.Resolver, *threading.Extractor, error) {
	o := &threading.Options{
		Key:          key,
		Domain:       th.Domain,
		ClosedPolicy: threading.Policy(th.ClosedPolicy),
		ReopenWithin: th.ReopenWithin,
		Logger:       cfg.Logger,
		OwnAddresses: append([]string{cfg.Mailbox.Address}, th.OwnAddresses...),
	}
	r, err := threading.NewResolver(store, o)
	if err != nil {
		return nil, nil, fmt.Errorf("threading: %w", err)
	}
	return r, threading.NewExtractor(nil), nil
}

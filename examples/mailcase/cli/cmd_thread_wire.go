package cli

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

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

// threadingOptions returns the thread resolver's options: from the
// mailbox's threading section of the configuration file, or without one
// the defaults and the key of the environment.
func threadingOptions(cfg wireConfig) (*threading.Options, error) {
	if cfg.Plugins == nil {
		return newThreadingOptions(cfg, threadingConfig{}, threadKeyFromEnv()), nil
	}
	th := cfg.Plugins.Threading
	key, err := secretValue(th.KeyEnv, th.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("threading key: %w", err)
	}
	return newThreadingOptions(cfg, th, decodeThreadKey(key)), nil
}

// newThreadingOptions builds the resolver's options from th (a mailbox's
// threading section, merged by mergePlugins) and key: the own addresses
// of th are those of every mailbox of the file.
func newThreadingOptions(cfg wireConfig, th threadingConfig, key []byte) *threading.Options {
	return &threading.Options{
		Key:          key,
		Domain:       th.Domain,
		ClosedPolicy: threading.Policy(th.ClosedPolicy),
		ReopenWithin: th.ReopenWithin,
		Logger:       cfg.Logger,
		OwnAddresses: th.OwnAddresses,
	}
}

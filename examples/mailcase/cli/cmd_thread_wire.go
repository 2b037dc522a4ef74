package cli

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// Environment variables configuring threading (M-4) for a command run
// without a configuration file (with one, its threading sections apply:
// threadingFromConfig):
//
//	MAILCASE_THREAD_KEY     HMAC key of this installation (hex, or raw text of
//	                        at least 16 bytes); without it signed Message-IDs
//	                        and tokens are not recognised
//	MAILCASE_THREAD_DOMAIN  domain of generated Message-IDs
//	MAILCASE_CLOSED_POLICY  reopen | reopen_within | new | new_linked | reject
//	MAILCASE_REOPEN_WITHIN  window of reopen_within (Go duration, e.g. 336h)
//	MAILCASE_OWN_ADDRESSES  comma-separated addresses of our other mailboxes
//	                        and aliases (anti-hijack: never participants); the
//	                        mailbox's own address is always included
const (
	envThreadKey    = "MAILCASE_THREAD_KEY"
	envThreadDomain = "MAILCASE_THREAD_DOMAIN"
	envClosedPolicy = "MAILCASE_CLOSED_POLICY"
	envReopenWithin = "MAILCASE_REOPEN_WITHIN"
	envOwnAddresses = "MAILCASE_OWN_ADDRESSES"
)

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
	if cfg.Plugins != nil {
		return threadingFromConfig(store, cfg)
	}
	o := &threading.Options{
		Key:          threadKeyFromEnv(),
		Domain:       os.Getenv(envThreadDomain),
		ClosedPolicy: threading.Policy(os.Getenv(envClosedPolicy)),
		Logger:       cfg.Logger,
		OwnAddresses: append([]string{cfg.Mailbox.Address}, strings.Split(os.Getenv(envOwnAddresses), ",")...),
	}
	if v := os.Getenv(envReopenWithin); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", envReopenWithin, err)
		}
		o.ReopenWithin = d
	}
	r, err := threading.NewResolver(store, o)
	if err != nil {
		return nil, nil, fmt.Errorf("threading: %w", err)
	}
	return r, threading.NewExtractor(nil), nil
}

// threadingFromConfig builds the threading plugins of a mailbox of a
// configuration file (wireConfig.Plugins): the file's settings, the key
// from where key_env or key_file says, and the mailbox's own address plus
// the own addresses merged by mergePlugins (every mailbox of the file).
func threadingFromConfig(store *mailcase.Store, cfg wireConfig) (*threading.Resolver, *threading.Extractor, error) {
	th := cfg.Plugins.Threading
	key, err := secretValue(th.KeyEnv, th.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("threading key: %w", err)
	}
	o := &threading.Options{
		Key:          decodeThreadKey(key),
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

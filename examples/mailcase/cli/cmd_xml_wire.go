package cli

import (
	"fmt"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/xmlapi"
)

// Structured mail (package xmlapi) is configured by the structured
// sections of the configuration file: the senders allowed to run API
// actions, the shared secret a request may carry in <secret> (secret_env or
// secret_file, with the replay window of its timestamp and nonce) and the
// queue of structured mail that cannot run. Besides the secret, a sender
// is authenticated by the pipeline's sender authentication (the dkim
// section and trusted_authserv_ids; Delivery.Auth), the same result that
// decides employee identity.

// structuredPlugin returns the structured-mail handler, or nil when no
// sender is allowed to run actions: the mailbox's structured section (or
// the file-wide one); without a configuration file, structured mail is
// off.
func structuredPlugin(store *mailcase.Store, cfg wireConfig) (mailcase.StructuredHandler, error) {
	if cfg.Plugins == nil || len(cfg.Plugins.Structured.Senders) == 0 {
		return nil, nil
	}
	st := cfg.Plugins.Structured
	secret, err := secretValue(st.SecretEnv, st.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("structured secret: %w", err)
	}
	forms, err := structuredForms(st)
	if err != nil {
		return nil, err
	}
	h, err := xmlapi.NewHandler(store, &xmlapi.HandlerOptions{
		AllowedSenders: st.Senders,
		Secret:         secret,
		AdminQueue:     st.AdminQueue,
		Forms:          forms,
		ReplayWindow:   st.ReplayWindow,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("structured.senders: %w", err)
	}
	return h, nil
}

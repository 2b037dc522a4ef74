package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/xmlapi"
)

// Environment variables configuring structured mail (M-8, package xmlapi)
// for a command run without a configuration file (with one, its
// structured sections apply):
//
//	MAILCASE_XML_SENDERS      comma-separated addresses and @domains allowed to
//	                          run API actions; unset means structured mail is
//	                          not recognised and is filed like any other mail
//	MAILCASE_XML_SECRET       shared secret a request may carry in <secret>
//	MAILCASE_XML_ADMIN_QUEUE  queue receiving structured mail that cannot run
//	                          (default "admin")
//
// Besides the secret, a sender is authenticated by the pipeline's trusted
// Authentication-Results (wireConfig.TrustedAuthServIDs).
const (
	envXMLSenders    = "MAILCASE_XML_SENDERS"
	envXMLSecret     = "MAILCASE_XML_SECRET"
	envXMLAdminQueue = "MAILCASE_XML_ADMIN_QUEUE"
)

// structuredPlugin returns the structured-mail handler, or nil when no
// sender is allowed to run actions. With a configuration file
// (cfg.Plugins), the settings are the mailbox's structured section (or the
// file-wide one).
func structuredPlugin(store *mailcase.Store, cfg wireConfig) (mailcase.StructuredHandler, error) {
	var senders []string
	for _, s := range strings.Split(os.Getenv(envXMLSenders), ",") {
		if s = strings.TrimSpace(s); s != "" {
			senders = append(senders, s)
		}
	}
	secret, adminQueue, from := os.Getenv(envXMLSecret), os.Getenv(envXMLAdminQueue), envXMLSenders
	if cfg.Plugins != nil {
		// A configuration file: its structured section only.
		st := cfg.Plugins.Structured
		senders, adminQueue, from = st.Senders, st.AdminQueue, "structured.senders"
		secret = ""
		if len(senders) > 0 {
			var err error
			if secret, err = secretValue(st.SecretEnv, st.SecretFile); err != nil {
				return nil, fmt.Errorf("structured secret: %w", err)
			}
		}
	}
	if len(senders) == 0 {
		return nil, nil
	}
	h, err := xmlapi.NewHandler(store, &xmlapi.HandlerOptions{
		AllowedSenders: senders,
		Secret:         secret,
		AdminQueue:     adminQueue,
		Authenticated: func(m *mailcase.Message) bool {
			ok, _ := mailcase.AuthenticatedSender(m, cfg.TrustedAuthServIDs)
			return ok
		},
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return h, nil
}

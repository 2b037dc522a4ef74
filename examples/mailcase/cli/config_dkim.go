package cli

// config_dkim.go is the dkim section of the configuration file (file-wide
// or per mailbox, key by key): sender authentication in process with
// package mailauth, next to the trusted Authentication-Results of
// trusted_authserv_ids.

import (
	"fmt"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// dkimConfig configures in-process DKIM verification
// (mailauth.Options).
type dkimConfig struct {
	// Verify turns in-process DKIM verification on (DNS TXT lookups of
	// the signers' keys); nil means off (only trusted_authserv_ids count).
	Verify *bool `yaml:"verify"`
	// Alignment is relaxed (the default: same organisational domain) or
	// strict (same domain) between the signing domain and the From domain.
	Alignment string `yaml:"alignment"`
	// DNSTimeout bounds the key lookups of one mail; 0 means 5s.
	DNSTimeout time.Duration `yaml:"dns_timeout"`
	// MaxSignatures bounds the signatures checked per mail; 0 means 5.
	MaxSignatures int `yaml:"max_signatures"`
}

// mergeDKIM returns mb's dkim section with the unset keys taken from def.
func mergeDKIM(def, mb dkimConfig) dkimConfig {
	if mb.Verify == nil {
		mb.Verify = def.Verify
	}
	if mb.Alignment == "" {
		mb.Alignment = def.Alignment
	}
	if mb.DNSTimeout == 0 {
		mb.DNSTimeout = def.DNSTimeout
	}
	if mb.MaxSignatures == 0 {
		mb.MaxSignatures = def.MaxSignatures
	}
	return mb
}

// senderAuth returns the pipeline's sender authentication: DKIM as
// configured plus the trusted Authentication-Results of trusted.
func (c dkimConfig) senderAuth(trusted []string) (*mailauth.Checker, error) {
	v, err := mailauth.New(&mailauth.Options{
		DKIM:               c.Verify != nil && *c.Verify,
		Alignment:          mailauth.Alignment(c.Alignment),
		Timeout:            c.DNSTimeout,
		MaxSignatures:      c.MaxSignatures,
		TrustedAuthServIDs: trusted,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	return v, nil
}

// checkDKIM validates a dkim section; at names a key of the section's
// level.
func checkDKIM(c *dkimConfig, at func(string) string, lines configLines) error {
	if err := lines.oneOf(at("dkim.alignment"), c.Alignment, true, string(mailauth.AlignRelaxed), string(mailauth.AlignStrict)); err != nil {
		return err
	}
	if c.DNSTimeout < 0 {
		return lines.errAt(at("dkim.dns_timeout"), "%s must not be negative", at("dkim.dns_timeout"))
	}
	if c.MaxSignatures < 0 {
		return lines.errAt(at("dkim.max_signatures"), "%s must not be negative", at("dkim.max_signatures"))
	}
	return nil
}

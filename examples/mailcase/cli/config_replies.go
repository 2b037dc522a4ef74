package cli

// config_replies.go is the part of the configuration file that configures
// the mail a mailbox sends on its own (acknowledgements, forwards,
// confirmations, notifications; file-wide under replies:, per mailbox over
// it key by key) and the outgoing server that `run` delivers through
// (outgoing:, file-wide).

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"

	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

// repliesConfig configures what a mailbox sends on its own. Unset keys of
// a mailbox take the file-wide value.
type repliesConfig struct {
	// Acknowledge answers every new case with an acknowledgement.
	Acknowledge *bool `yaml:"acknowledge"`
	// FromName is the display name of the mailbox address in what it
	// sends.
	FromName string `yaml:"from_name"`
	// FromAgent sends a Log Email (mailcase reply) From the agent's
	// address, with Reply-To the mailbox address.
	FromAgent *bool `yaml:"from_agent"`
	// LoopID names the installation in the loop header of everything it
	// sends; "" means "emailcrm " and the domain of the mailbox address.
	LoopID string `yaml:"loop_id"`
	// Internal is the internal support address forwards go to.
	Internal string `yaml:"internal"`
	// ForwardReplies, ForwardUndecided, ConfirmAgents and NotifyOwner
	// switch the Notifier's messages (see outbox.NotifyOptions).
	ForwardReplies   *bool `yaml:"forward_replies"`
	ForwardUndecided *bool `yaml:"forward_undecided"`
	ConfirmAgents    *bool `yaml:"confirm_agents"`
	NotifyOwner      *bool `yaml:"notify_owner"`
	// QueueMembers lists per queue the addresses told of new cases.
	QueueMembers map[string][]string `yaml:"queue_members"`
	// Templates override the shipped templates by kind
	// (acknowledgement, confirmation, forward, notification).
	Templates map[string]templateFiles `yaml:"templates"`
	// QueueTemplates override them for the cases of a queue: queue name,
	// then kind.
	QueueTemplates map[string]map[string]templateFiles `yaml:"queue_templates"`
}

// templateFiles is a template: the subject inline, the bodies in files
// (relative to the configuration file).
type templateFiles struct {
	Subject  string `yaml:"subject"`
	TextFile string `yaml:"text_file"`
	HTMLFile string `yaml:"html_file"`
}

// outgoingConfig is the outgoing SMTP server of `run`.
type outgoingConfig struct {
	// Addr is host:port; "" means run sends nothing (mail stays queued).
	Addr string `yaml:"addr"`
	// Security is tls (implicit TLS, the default, port 465), starttls
	// (port 587, mandatory) or insecure (loopback and tests only).
	Security string `yaml:"security"`
	Username string `yaml:"username"`
	// PasswordEnv and TokenEnv name the variables holding the password or
	// an OAuth2 access token (XOAUTH2).
	PasswordEnv string `yaml:"password_env"`
	TokenEnv    string `yaml:"oauth2_token_env"`
	CAFile      string `yaml:"ca_file"`
	// LocalName is the EHLO name; "" means localhost.
	LocalName string `yaml:"local_name"`
	// Senders is the number of parallel deliverers; 0 means 1.
	Senders int `yaml:"senders"`
}

func mergeBool(def, mb *bool) *bool {
	if mb != nil {
		return mb
	}
	return def
}

func mergeReplies(def, mb repliesConfig) repliesConfig {
	mb.Acknowledge = mergeBool(def.Acknowledge, mb.Acknowledge)
	mb.ForwardReplies = mergeBool(def.ForwardReplies, mb.ForwardReplies)
	mb.ForwardUndecided = mergeBool(def.ForwardUndecided, mb.ForwardUndecided)
	mb.ConfirmAgents = mergeBool(def.ConfirmAgents, mb.ConfirmAgents)
	mb.NotifyOwner = mergeBool(def.NotifyOwner, mb.NotifyOwner)
	mb.FromAgent = mergeBool(def.FromAgent, mb.FromAgent)
	for _, p := range []struct{ d, m *string }{{&def.FromName, &mb.FromName}, {&def.LoopID, &mb.LoopID}, {&def.Internal, &mb.Internal}} {
		if *p.m == "" {
			*p.m = *p.d
		}
	}
	if mb.QueueMembers == nil {
		mb.QueueMembers = def.QueueMembers
	}
	if mb.Templates == nil {
		mb.Templates = def.Templates
	}
	if mb.QueueTemplates == nil {
		mb.QueueTemplates = def.QueueTemplates
	}
	return mb
}

func on(b *bool) bool { return b != nil && *b }

// notifies reports whether the Notifier has anything to do.
func (r *repliesConfig) notifies() bool {
	return on(r.ForwardReplies) || on(r.ForwardUndecided) || on(r.ConfirmAgents) || on(r.NotifyOwner) || len(r.QueueMembers) > 0
}

// templates parses the configured templates.
func (r *repliesConfig) templates() (map[string]*outbox.Template, error) {
	return parseTemplates(r.Templates)
}

// queueTemplates parses the configured templates of each queue.
func (r *repliesConfig) queueTemplates() (map[string]map[string]*outbox.Template, error) {
	out := map[string]map[string]*outbox.Template{}
	for q, files := range r.QueueTemplates {
		t, err := parseTemplates(files)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
		out[q] = t
	}
	return out, nil
}

// parseTemplates parses templates by kind.
func parseTemplates(files map[string]templateFiles) (map[string]*outbox.Template, error) {
	out := map[string]*outbox.Template{}
	for kind, f := range files {
		src := outbox.TemplateSource{Subject: f.Subject}
		for _, p := range []struct {
			file string
			dst  *string
		}{{f.TextFile, &src.Text}, {f.HTMLFile, &src.HTML}} {
			if p.file == "" {
				continue
			}
			b, err := os.ReadFile(p.file)
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", kind, err)
			}
			*p.dst = string(b)
		}
		t, err := outbox.ParseTemplate(kind, src)
		if err != nil {
			return nil, err
		}
		out[kind] = t
	}
	return out, nil
}

// checkReplies validates a replies section at path.
func checkReplies(r *repliesConfig, path string, lines configLines) error {
	at := func(key string) string {
		if path == "" {
			return "replies." + key
		}
		return path + ".replies." + key
	}
	if r.Internal != "" && mailcase.NormalizeAddress(r.Internal) == "" {
		return lines.errAt(at("internal"), "%s: %q is not a mail address", at("internal"), r.Internal)
	}
	if strings.ContainsAny(r.LoopID+r.FromName, "\r\n") {
		return lines.errAt(at("loop_id"), "%s: loop_id and from_name are one line each", strings.TrimSuffix(at(""), "."))
	}
	for q, addrs := range r.QueueMembers {
		for j, a := range addrs {
			if mailcase.NormalizeAddress(a) == "" {
				p := fmt.Sprintf("%s.%s[%d]", at("queue_members"), q, j)
				return lines.errAt(p, "%s: %q is not a mail address", p, a)
			}
		}
	}
	for kind := range r.Templates {
		if _, ok := outbox.ShippedTemplates()[kind]; !ok {
			p := at("templates." + kind)
			return lines.errAt(p, "%s: unknown kind (acknowledgement, confirmation, forward, notification, log-email)", p)
		}
	}
	if _, err := r.templates(); err != nil {
		return lines.errAt(at("templates"), "%s: %v", at("templates"), err)
	}
	for q, files := range r.QueueTemplates {
		for kind := range files {
			if _, ok := outbox.ShippedTemplates()[kind]; !ok || kind == outbox.KindLogEmail {
				p := at("queue_templates." + q + "." + kind)
				return lines.errAt(p, "%s: unknown kind (acknowledgement, confirmation, forward, notification)", p)
			}
		}
	}
	if _, err := r.queueTemplates(); err != nil {
		return lines.errAt(at("queue_templates"), "%s: %v", at("queue_templates"), err)
	}
	return nil
}

// checkOutgoing validates the outgoing section.
func checkOutgoing(o *outgoingConfig, lines configLines) error {
	if o.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return lines.errAt("outgoing.addr", "outgoing.addr: %q is not host:port", o.Addr)
	}
	if err := lines.oneOf("outgoing.security", o.Security, true, "tls", "starttls", "insecure"); err != nil {
		return err
	}
	if o.Senders < 0 || o.Senders > 64 {
		return lines.errAt("outgoing.senders", "outgoing.senders must be between 1 and 64")
	}
	return nil
}

// responders returns the mailbox's Responders for the pipeline (none when
// its replies section asks for nothing). The cases are in store, the
// outgoing mail queues in ob's outbox (store itself, or the local SQL
// store a CRM store is paired with).
func responders(store, ob *mailcase.Store, mb mailcase.Mailbox, r *repliesConfig, to *threading.Options) ([]mailcase.Responder, error) {
	if !on(r.Acknowledge) && !r.notifies() {
		return nil, nil
	}
	if !ob.CanOutbox() {
		return nil, errors.New("replies need a store that keeps an outbox (mem://, sqlite, postgres, mysql)")
	}
	if mailcase.NormalizeAddress(mb.Address) == "" {
		return nil, fmt.Errorf("mailbox %s: replies need the mailbox's address", mb.Name)
	}
	tpls, err := r.templates()
	if err != nil {
		return nil, err
	}
	qtpls, err := r.queueTemplates()
	if err != nil {
		return nil, err
	}
	loop := r.LoopID
	if loop == "" {
		loop = "emailcrm " + mailcase.DomainOf(mb.Address)
	}
	var codec *threading.Codec
	if to != nil && len(to.Key) > 0 {
		domain := to.Domain
		if domain == "" {
			domain = mailcase.DomainOf(mb.Address)
		}
		if codec, err = threading.NewCodec(to.Key, domain); err != nil {
			return nil, err
		}
	}
	var own []string
	if to != nil {
		own = to.OwnAddresses
	}
	from := mail.Address{Name: r.FromName, Address: mb.Address}
	ackByQueue := map[string]*outbox.Template{}
	for q, t := range qtpls {
		if a := t[outbox.KindAcknowledgement]; a != nil {
			ackByQueue[q] = a
		}
	}
	// The replies only ask it whom bounces suppress (the state is in the
	// outbox's store); the pipeline's own handler of bounces, built by
	// emailcrm.NewPipeline, marks them and reports reply.bounced to the
	// pipeline's OnEvent.
	bounces := outbox.NewBounces(ob, &outbox.BounceOptions{Cases: store})
	var out []mailcase.Responder
	if on(r.Acknowledge) {
		a, err := outbox.NewAcknowledger(ob, &outbox.AckOptions{From: from, LoopID: loop, Template: tpls[outbox.KindAcknowledgement],
			QueueTemplates: ackByQueue, Codec: codec, OwnAddresses: own, Bounces: bounces, Cases: store})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if r.notifies() {
		n, err := outbox.NewNotifier(ob, &outbox.NotifyOptions{From: from, LoopID: loop, Internal: mail.Address{Address: r.Internal},
			ForwardReplies: on(r.ForwardReplies), ForwardUndecided: on(r.ForwardUndecided), ConfirmAgents: on(r.ConfirmAgents),
			NotifyOwner: on(r.NotifyOwner), QueueMembers: r.QueueMembers, Templates: tpls, QueueTemplates: qtpls, Codec: codec,
			OwnAddresses: own, Bounces: bounces, Cases: store})
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// sender returns the transport of the outgoing section, nil when none is
// configured.
func (o *outgoingConfig) sender() (*smtpsender.Sender, error) {
	if o.Addr == "" {
		return nil, nil
	}
	password, err := secretEnv(o.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("outgoing: %w", err)
	}
	token, err := secretEnv(o.TokenEnv)
	if err != nil {
		return nil, fmt.Errorf("outgoing: %w", err)
	}
	login := smtpsender.Login{Username: o.Username, Password: password}
	if token != "" {
		login.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})
	}
	tcfg, err := caTLSConfig(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("outgoing: %w", err)
	}
	sec := smtpsender.Security(o.Security)
	if sec == "" {
		sec = smtpsender.TLS
	}
	return smtpsender.New(o.Addr, login, &smtpsender.Options{Security: sec, TLSConfig: tcfg, LocalName: o.LocalName})
}

package cli

import (
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
	"github.com/emailcrm/emailcrm/xmlapi"
)

// ERMS webforms and the automated replies of structured mail are keys of
// the structured section:
//
//	structured:
//	  senders: [forms@web.example.com]    # the webform server
//	  webforms:                           # WEBFORM_TEMPL_ID -> built-in handler
//	    CONTACT_US:
//	      queue: sales
//	      priority: normal
//	      subject_field: QUESTION         # or subject: "Contact form"
//	      fields: [QUESTION, PRODUCT, ADDRESS.CITY]   # the case's description; [] = all
//	      contact_field: EMAIL            # the customer: case contact and reply recipient
//	      name_field: NAME
//	      reply_template: contact-us-thanks
//	  reply_templates:                    # named templates of automated replies
//	    contact-us-thanks: {subject: "Thanks {{.Vars.NAME}}", text_file: thanks.txt}
//
// Each webform creates a case from the form (xmlapi.CaseForm) and replies
// with its template; a request of the own format names a template in its
// reply element. The templates see {{.Vars.FIELD}} besides the usual
// template data. Replies need a store with an outbox and the mailbox's
// address, like the replies section's.

// webformConfig is one webform's built-in handler (xmlapi.CaseFormOptions).
type webformConfig struct {
	Queue         string   `yaml:"queue"`
	Priority      string   `yaml:"priority"`
	Subject       string   `yaml:"subject"`
	SubjectField  string   `yaml:"subject_field"`
	Fields        []string `yaml:"fields"`
	ContactField  string   `yaml:"contact_field"`
	NameField     string   `yaml:"name_field"`
	ReplyTemplate string   `yaml:"reply_template"`
}

func (w webformConfig) options() xmlapi.CaseFormOptions {
	return xmlapi.CaseFormOptions{Queue: w.Queue, Priority: w.Priority, Subject: w.Subject, SubjectField: w.SubjectField,
		Fields: w.Fields, ContactField: w.ContactField, NameField: w.NameField, ReplyTemplate: w.ReplyTemplate}
}

// mergeWebforms takes the file-wide webforms and reply templates that mb
// does not define.
func mergeWebforms(def, mb structuredConfig) structuredConfig {
	if len(def.Webforms) > 0 {
		forms := map[string]webformConfig{}
		for id, w := range def.Webforms {
			forms[id] = w
		}
		for id, w := range mb.Webforms {
			forms[id] = w
		}
		mb.Webforms = forms
	}
	if len(def.ReplyTemplates) > 0 {
		tpls := map[string]templateFiles{}
		for n, t := range def.ReplyTemplates {
			tpls[n] = t
		}
		for n, t := range mb.ReplyTemplates {
			tpls[n] = t
		}
		mb.ReplyTemplates = tpls
	}
	return mb
}

// checkWebforms validates the webforms and reply templates of a
// structured section; at names a key.
func checkWebforms(st *structuredConfig, at func(string) string, lines configLines) error {
	if _, err := parseTemplates(st.ReplyTemplates); err != nil {
		return lines.errAt(at("structured.reply_templates"), "%s: %v", at("structured.reply_templates"), err)
	}
	for _, id := range sortedKeys(st.Webforms) {
		w := st.Webforms[id]
		p := at("structured.webforms." + id)
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, "<>&\r\n") {
			return lines.errAt(p, "%s: %q is not a webform template ID", p, id)
		}
		if _, err := xmlapi.CaseForm(w.options()); err != nil {
			return lines.errAt(p, "%s: %v", p, strings.TrimPrefix(err.Error(), "xmlapi: case form: "))
		}
		// A reply template may be defined file-wide or in the mailbox:
		// checkMergedWebforms checks it once the sections are merged.
	}
	return nil
}

// checkMergedWebforms checks that every mailbox's webforms name reply
// templates it has, once the file-wide sections are merged in.
func checkMergedWebforms(cfg *runConfig, lines configLines) error {
	for i := range cfg.Mailboxes {
		if _, err := structuredForms(cfg.Mailboxes[i].plugins.Structured); err != nil {
			p := fmt.Sprintf("mailboxes[%d].structured", i)
			return lines.errAt(p, "mailbox %s: %v", cfg.Mailboxes[i].Name, err)
		}
	}
	return nil
}

// structuredForms returns the built-in handlers of the merged section.
func structuredForms(st structuredConfig) (map[string]xmlapi.FormHandler, error) {
	forms := map[string]xmlapi.FormHandler{}
	for id, w := range st.Webforms {
		if w.ReplyTemplate != "" && st.ReplyTemplates[w.ReplyTemplate] == (templateFiles{}) {
			return nil, fmt.Errorf("structured.webforms.%s.reply_template: no reply template %q in structured.reply_templates", id, w.ReplyTemplate)
		}
		f, err := xmlapi.CaseForm(w.options())
		if err != nil {
			return nil, fmt.Errorf("structured.webforms.%s: %w", id, err)
		}
		forms[id] = f
	}
	return forms, nil
}

// structuredReplier returns the responder of structured replies, nil when
// the section defines no reply template.
func structuredReplier(store, ob *mailcase.Store, cfg wireConfig, to *threading.Options) (mailcase.Responder, error) {
	if cfg.Plugins == nil || len(cfg.Plugins.Structured.ReplyTemplates) == 0 || len(cfg.Plugins.Structured.Senders) == 0 {
		return nil, nil
	}
	mb, r := cfg.Mailbox, cfg.Plugins.Replies
	if !ob.CanOutbox() {
		return nil, errors.New("structured replies need a store that keeps an outbox (mem://, sqlite, postgres, mysql)")
	}
	if mailcase.NormalizeAddress(mb.Address) == "" {
		return nil, fmt.Errorf("mailbox %s: structured replies need the mailbox's address", mb.Name)
	}
	tpls, err := parseTemplates(cfg.Plugins.Structured.ReplyTemplates)
	if err != nil {
		return nil, fmt.Errorf("structured.reply_templates: %w", err)
	}
	loop := r.LoopID
	if loop == "" {
		loop = "emailcrm " + mailcase.DomainOf(mb.Address)
	}
	var codec *threading.Codec
	var own []string
	if to != nil {
		own = to.OwnAddresses
		if len(to.Key) > 0 {
			domain := to.Domain
			if domain == "" {
				domain = mailcase.DomainOf(mb.Address)
			}
			if codec, err = threading.NewCodec(to.Key, domain); err != nil {
				return nil, err
			}
		}
	}
	return outbox.NewStructuredReplier(ob, &outbox.StructuredReplyOptions{From: mail.Address{Name: r.FromName, Address: mb.Address},
		LoopID: loop, Templates: tpls, Codec: codec, OwnAddresses: own,
		Bounces: outbox.NewBounces(ob, &outbox.BounceOptions{Cases: store}), Cases: store})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

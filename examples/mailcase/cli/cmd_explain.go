package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/xmlapi"
)

// explainJSON is the output of explain --json. The field names are a stable
// interface: scripts and tests read them.
type explainJSON struct {
	MessageID        string             `json:"message_id"`
	MessageIDDerived bool               `json:"message_id_derived"`
	From             mailcase.Address   `json:"from"`
	To               []mailcase.Address `json:"to"`
	Cc               []mailcase.Address `json:"cc"`
	Subject          string             `json:"subject"`
	// Date is RFC 3339, "" when the mail has no usable Date field.
	Date         string           `json:"date"`
	InReplyTo    []string         `json:"in_reply_to"`
	References   []string         `json:"references"`
	Size         int64            `json:"size"`
	Text         string           `json:"text"`
	TextFromHTML bool             `json:"text_from_html"`
	ReplyText    string           `json:"reply_text"`
	HTML         bool             `json:"html"`
	Attachments  []attachmentJSON `json:"attachments"`
	Auto         autoJSON         `json:"auto"`
	Bounce       bounceJSON       `json:"bounce"`
	Structured   bool             `json:"structured"`
	// StructuredAPI says what the structured handler would do with a
	// structured mail; null for other mail.
	StructuredAPI *structuredAPIJSON `json:"structured_api"`
	Warnings      []string           `json:"warnings"`
	// Sender, Thread and Route repeat the outcome's decisions at top level;
	// they are null when the pipeline did not reach that stage.
	Sender  *mailcase.SenderMatch `json:"sender"`
	Thread  *threadJSON           `json:"thread"`
	Route   *routeJSON            `json:"route"`
	Outcome mailcase.Outcome      `json:"outcome"`
	// Plugins names the plugin of each role the pipeline used.
	Plugins []emailcrm.Plugin `json:"plugins"`
}

type attachmentJSON struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
	ContentID   string `json:"content_id"`
}

type autoJSON struct {
	IsAuto  bool   `json:"is_auto"`
	NoReply bool   `json:"no_reply"`
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
}

type bounceJSON struct {
	IsBounce          bool   `json:"is_bounce"`
	OriginalMessageID string `json:"original_message_id"`
	Recipient         string `json:"recipient"`
	Status            string `json:"status"`
	Permanent         bool   `json:"permanent"`
}

type threadJSON struct {
	Action     mailcase.ThreadAction `json:"action"`
	Case       mailcase.CaseID       `json:"case"`
	CaseNumber string                `json:"case_number"`
	Signal     string                `json:"signal"`
	Detail     string                `json:"detail"`
	Reason     string                `json:"reason"`
}

type routeJSON struct {
	Queue    string                `json:"queue"`
	Priority mailcase.Priority     `json:"priority"`
	Category string                `json:"category"`
	Rule     string                `json:"rule"`
	Reason   string                `json:"reason"`
	Scores   []mailcase.QueueScore `json:"scores"`
	Fired    []string              `json:"fired"`
}

// structuredAPIJSON is xmlapi.Explanation: kind is "erms-webform" or
// "request", error is why the mail would go to the admin queue.
type structuredAPIJSON struct {
	Kind          string                   `json:"kind"`
	TemplateID    string                   `json:"template_id"`
	Authenticated bool                     `json:"authenticated"`
	AuthMethod    string                   `json:"auth_method"`
	AuthDomain    string                   `json:"auth_domain"`
	Actions       []xmlapi.ExplainedAction `json:"actions"`
	ReplyTemplate string                   `json:"reply_template"`
	Error         string                   `json:"error"`
}

// explainStructured asks the structured handler of the configuration
// what it would do with a structured mail; nil for other mail.
func explainStructured(ctx context.Context, store *mailcase.Store, wc wireConfig, res *mailcase.Result) (*structuredAPIJSON, error) {
	if !res.Outcome.Structured || res.Message == nil {
		return nil, nil
	}
	sh, err := structuredPlugin(store, wc)
	if err != nil {
		return nil, err
	}
	h, ok := sh.(*xmlapi.Handler)
	if !ok {
		return nil, nil
	}
	mb := wc.Mailbox
	d := &mailcase.Delivery{Mailbox: &mb, Message: res.Message}
	if res.Outcome.Auth != nil {
		d.Auth = *res.Outcome.Auth
	}
	ex := h.Explain(ctx, d)
	return &structuredAPIJSON{Kind: ex.Kind, TemplateID: ex.TemplateID, Authenticated: ex.Authenticated,
		AuthMethod: ex.AuthMethod, AuthDomain: ex.AuthDomain, Actions: ex.Actions,
		ReplyTemplate: ex.ReplyTemplate, Error: ex.Error}, nil
}

// printStructured prints what the structured handler would do.
func printStructured(w io.Writer, s *structuredAPIJSON) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Structured API")
	field(w, "kind", s.Kind)
	if s.TemplateID != "" {
		field(w, "template", s.TemplateID)
	}
	auth := "no"
	if s.Authenticated {
		auth = "yes" + suffix(", by ", s.AuthMethod) + suffix(" for ", s.AuthDomain)
	}
	field(w, "auth", auth)
	for _, a := range s.Actions {
		field(w, "action", a.String())
	}
	if s.ReplyTemplate != "" {
		field(w, "reply", "template "+s.ReplyTemplate)
	}
	if s.Error != "" {
		field(w, "error", s.Error+" (the mail goes to the admin queue)")
	}
}

type errorJSON struct {
	Error string `json:"error"`
}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("explain", "[--json] [--config FILE] [--store URL] [--mailbox NAME] FILE.eml", stderr)
	asJSON := fset.Bool("json", false, "print one JSON object instead of text")
	cfgPath := fset.String("config", "", "configuration file (YAML), as for run: the mailbox (address, policies, "+
		"threading, routing, structured mail) and, unless --store is given, the store come from it")
	storeURL := fset.String("store", "", "store to look senders and threads up in; nothing is written "+
		"(default "+defaultStoreURL()+"; an in-memory store is seeded with the demo directory)")
	mailbox := fset.String("mailbox", demoMailbox().Name, "mailbox name (part of the idempotency key: "+
		"a mail imported under this name is a duplicate)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fset.Usage()
		return usageError("explain needs exactly one mail file")
	}
	fail := func(err error) error {
		if *asJSON {
			if jerr := writeJSON(stdout, errorJSON{Error: err.Error()}); jerr != nil {
				return jerr
			}
		}
		return err
	}

	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return fail(fmt.Errorf("read mail: %w", err))
	}
	if _, err := mailcase.ParseMessage(raw, nil); err != nil {
		return fail(fmt.Errorf("%s cannot be parsed: %w", pos[0], err))
	}

	url := *storeURL
	var cfgMailbox *mailboxConfig
	if *cfgPath != "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return fail(err)
		}
		name := ""
		fset.Visit(func(f *flag.Flag) {
			if f.Name == "mailbox" {
				name = *mailbox
			}
		})
		if cfgMailbox, err = cfg.mailbox(name); err != nil {
			return fail(usageError("%w", err))
		}
		if url == "" {
			if url, err = cfg.storeURL(); err != nil {
				return fail(err)
			}
		}
	}
	if url == "" {
		url = defaultStoreURL()
	}
	open := openExistingStore // explain writes nothing: it never creates a store
	if isMemURL(url) {
		open = openStore
	}
	store, err := open(ctx, url)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	var nm names
	if isMemURL(url) {
		dir, err := seedDemoDirectory(ctx, store)
		if err != nil {
			return fail(err)
		}
		nm = dir.names()
	}
	wc := wireConfig{Mailbox: demoMailbox(), Logger: commandLogger(fset, stderr),
		TrustedAuthServIDs: []string{demoAuthServID}}
	wc.Mailbox.Name = *mailbox
	if cfgMailbox != nil {
		wc.Mailbox, wc.TrustedAuthServIDs, wc.Plugins = cfgMailbox.Mailbox, cfgMailbox.TrustedAuthServIDs, cfgMailbox.plugins
	}
	p, err := buildPipeline(store, wc)
	if err != nil {
		return fail(err)
	}
	defer p.Close()

	res, err := p.Process(ctx, raw, &mailcase.ProcessOptions{DryRun: true, Quiet: true})
	if err != nil && (res == nil || res.Message == nil) {
		return fail(fmt.Errorf("process %s: %w", pos[0], err))
	}
	if res.Message == nil {
		return fail(fmt.Errorf("%s cannot be parsed", pos[0]))
	}
	sapi, err := explainStructured(ctx, store, wc, res)
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		j := newExplainJSON(res)
		j.Plugins = p.Plugins
		j.StructuredAPI = sapi
		return writeJSON(stdout, j)
	}
	printExplain(stdout, res, nm, p.Plugins)
	if sapi != nil {
		printStructured(stdout, sapi)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newExplainJSON(res *mailcase.Result) explainJSON {
	m, o := res.Message, res.Outcome
	out := explainJSON{
		MessageID:        m.ID,
		MessageIDDerived: m.IDDerived,
		From:             m.From,
		To:               nonNil(m.To),
		Cc:               nonNil(m.Cc),
		Subject:          m.Subject,
		InReplyTo:        nonNil(m.InReplyTo),
		References:       nonNil(m.References),
		Size:             m.Size,
		Text:             m.Text,
		TextFromHTML:     m.TextFromHTML,
		ReplyText:        m.ReplyText,
		HTML:             m.HTML != "",
		Attachments:      []attachmentJSON{},
		Auto:             autoJSON{IsAuto: o.Auto.IsAuto, NoReply: o.Auto.NoReply, Kind: o.Auto.Kind, Reason: o.Auto.Reason},
		Bounce: bounceJSON{IsBounce: o.Bounce.IsBounce, OriginalMessageID: o.Bounce.OriginalMessageID,
			Recipient: o.Bounce.Recipient, Status: o.Bounce.Status, Permanent: o.Bounce.Permanent},
		Structured: o.Structured,
		Warnings:   m.Warnings(),
		Sender:     o.Sender,
		Outcome:    o,
	}
	if !m.Date.IsZero() {
		out.Date = m.Date.Format(time.RFC3339)
	}
	for _, a := range m.Attachments {
		out.Attachments = append(out.Attachments, attachmentJSON{
			Filename: a.Filename, ContentType: a.ContentType, Size: a.Size,
			Inline: a.Inline, ContentID: a.ContentID,
		})
	}
	if t := o.Thread; t != nil {
		out.Thread = &threadJSON{Action: t.Action, Case: t.CaseID, CaseNumber: t.CaseNumber,
			Signal: t.Signal, Detail: t.Detail, Reason: t.Reason}
	}
	if r := o.Route; r != nil {
		out.Route = &routeJSON{Queue: r.Queue, Priority: r.Priority, Category: r.Category,
			Rule: r.Rule, Reason: r.Reason, Scores: nonNil(r.Scores), Fired: nonNil(r.Fired)}
	}
	if out.Outcome.Steps == nil {
		out.Outcome.Steps = []mailcase.Step{}
	}
	return out
}

// nonNil returns s, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// printExplain prints the parsed mail and every decision readably.
func printExplain(w io.Writer, res *mailcase.Result, nm names, plugins []emailcrm.Plugin) {
	m, o := res.Message, res.Outcome
	fmt.Fprintln(w, "Mail")
	id := m.ID
	if m.IDDerived {
		id += " (derived: the mail has no Message-ID)"
	}
	field(w, "message-id", id)
	field(w, "from", formatAddress(m.From))
	field(w, "to", formatAddresses(m.To))
	if len(m.Cc) > 0 {
		field(w, "cc", formatAddresses(m.Cc))
	}
	field(w, "subject", m.Subject)
	if !m.Date.IsZero() {
		field(w, "date", m.Date.Format(time.RFC1123Z))
	} else {
		field(w, "date", "(none)")
	}
	if len(m.InReplyTo) > 0 {
		field(w, "in-reply-to", strings.Join(m.InReplyTo, " "))
	}
	if len(m.References) > 0 {
		field(w, "references", strings.Join(m.References, " "))
	}
	field(w, "size", fmt.Sprintf("%d bytes", m.Size))
	body := "text"
	switch {
	case m.HTML != "" && m.TextFromHTML:
		body = "HTML only (text derived from HTML)"
	case m.HTML != "":
		body = "text and HTML"
	}
	field(w, "body", body)
	for _, a := range m.Attachments {
		kind := "attachment"
		if a.Inline {
			kind = "inline"
		}
		desc := fmt.Sprintf("%s %q %s, %d bytes", kind, a.Filename, a.ContentType, a.Size)
		if a.ContentID != "" {
			desc += ", cid " + a.ContentID
		}
		field(w, "part", desc)
	}
	for _, warn := range m.Warnings() {
		field(w, "warning", warn)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Text")
	printIndented(w, m.Text, 12)
	if m.ReplyText != m.Text {
		fmt.Fprintln(w, "Reply text (quoted history removed)")
		printIndented(w, m.ReplyText, 12)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Decisions (dry run: nothing was written)")
	printDecisions(w, &o, nm)
	if len(plugins) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Plugins")
		for _, pl := range plugins {
			fmt.Fprintln(w, clean("  "+pl.String()))
		}
	}
	if len(o.Steps) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Steps")
		for i, s := range o.Steps {
			line := fmt.Sprintf("  %2d. %-10s %s", i+1, s.Stage, s.Decision)
			if s.Reason != "" {
				line += ": " + s.Reason
			}
			fmt.Fprintln(w, clean(line))
		}
	}
}

// printIndented prints at most maxLines lines of text, indented.
func printIndented(w io.Writer, text string, maxLines int) {
	lines := strings.Split(strings.TrimRight(text, "\r\n \t"), "\n")
	for i, l := range lines {
		if i == maxLines {
			fmt.Fprintf(w, "  ... (%d more lines)\n", len(lines)-maxLines)
			break
		}
		if l = strings.TrimRight(l, "\r \t"); l == "" {
			fmt.Fprintln(w)
		} else {
			fmt.Fprintln(w, "  "+cleanText(l))
		}
	}
}

// field prints one "name value" line; value is sanitised (clean).
func field(w io.Writer, name, value string) {
	fmt.Fprintf(w, "  %-11s %s\n", name, clean(value))
}

func formatAddress(a mailcase.Address) string {
	switch {
	case a.Email == "" && a.Name == "":
		return "(none)"
	case a.Name == "":
		return a.Email
	}
	return fmt.Sprintf("%s <%s>", a.Name, a.Email)
}

func formatAddresses(as []mailcase.Address) string {
	if len(as) == 0 {
		return "(none)"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = formatAddress(a)
	}
	return strings.Join(parts, ", ")
}

// names maps directory record IDs (accounts, contacts) to display names
// for readable output; a nil names shows IDs.
type names map[string]string

// of returns the name of record id, or id itself.
func (nm names) of(id string) string {
	if n, ok := nm[id]; ok && n != "" {
		return n
	}
	return id
}

// printResult prints what the pipeline did with one mail (demo).
func printResult(w io.Writer, res *mailcase.Result, err error, nm names) {
	if res != nil && res.Message != nil {
		field(w, "subject", res.Message.Subject)
		field(w, "from", formatAddress(res.Message.From))
	}
	if res != nil {
		printDecisions(w, &res.Outcome, nm)
	}
	if err != nil {
		field(w, "error", err.Error())
	}
}

// printDecisions prints the decisions of an outcome, one line per stage
// that ran, ending with the action.
func printDecisions(w io.Writer, o *mailcase.Outcome, nm names) {
	if o.Filter != nil && o.Filter.Drop {
		field(w, "filter", joinNonEmpty(": ", "dropped by "+orDash(o.Filter.Rule), o.Filter.Reason))
	}
	switch {
	case o.Auto.IsAuto:
		field(w, "auto", joinNonEmpty(": ", orDash(o.Auto.Kind), o.Auto.Reason))
	case o.Auto.NoReply:
		field(w, "no-reply", joinNonEmpty(": ", orDash(o.Auto.Kind), o.Auto.Reason))
	}
	if o.Bounce.IsBounce {
		desc := "delivery status notification"
		if o.Bounce.OriginalMessageID != "" {
			desc += ", original " + o.Bounce.OriginalMessageID
		}
		if o.Bounce.Recipient != "" {
			desc += ", recipient " + o.Bounce.Recipient
		}
		if o.Bounce.Status != "" {
			desc += ", status " + o.Bounce.Status
		}
		field(w, "bounce", desc)
	}
	if o.Structured {
		field(w, "structured", "yes")
	}
	if o.Sender != nil {
		field(w, "sender", describeSender(o.Sender, nm))
		if o.SenderPolicy != "" {
			field(w, "", "policy for an "+o.SenderPolicy)
		}
	}
	if t := o.Thread; t != nil {
		field(w, "thread", describeThread(t))
	}
	if r := o.Route; r != nil {
		desc := "queue " + r.Queue
		if r.Priority != "" {
			desc += ", priority " + string(r.Priority)
		}
		if r.Category != "" {
			desc += ", category " + r.Category
		}
		if r.Rule != "" {
			desc += ", rule " + r.Rule
		}
		field(w, "route", desc)
		if r.Reason != "" {
			field(w, "", r.Reason)
		}
		printScoresFired(w, r)
	}
	field(w, "result", describeAction(o))
}

func describeSender(s *mailcase.SenderMatch, nm names) string {
	var d string
	switch s.Kind {
	case mailcase.SenderContact:
		d = "contact"
		if s.Contact != nil {
			d += " " + joinNonEmpty(" ", s.Contact.Name, "<"+s.Contact.Email+">")
			if s.Contact.Placeholder {
				d += " (placeholder)"
			}
		}
		switch {
		case s.Account != nil:
			d += ", account " + s.Account.Name
		case s.Contact != nil && s.Contact.AccountID != "":
			d += ", account " + nm.of(s.Contact.AccountID)
		}
	case mailcase.SenderAccount:
		d = "account"
		if s.Account != nil {
			d += " " + s.Account.Name
		}
	case mailcase.SenderEmployee:
		d = "employee"
		if s.Employee != nil {
			d += " " + joinNonEmpty(" ", s.Employee.Name, "<"+s.Employee.Email+">")
		}
	case mailcase.SenderAmbiguous:
		d = "ambiguous: " + strings.Join(s.Candidates, ", ")
	default:
		d = string(s.Kind)
		if s.Address != "" {
			d += " " + s.Address
		}
	}
	if s.Reason != "" {
		d += " (" + s.Reason + ")"
	}
	return d
}

func describeThread(t *mailcase.ThreadDecision) string {
	var d string
	switch t.Action {
	case mailcase.ThreadNew:
		d = "new thread"
	case mailcase.ThreadAppend:
		d = "continues case " + caseRef(t.CaseNumber, t.CaseID)
	case mailcase.ThreadReopen:
		d = "continues closed case " + caseRef(t.CaseNumber, t.CaseID) + ", which is reopened"
	case mailcase.ThreadNewLinked:
		d = "new case linked to closed case " + caseRef(t.CaseNumber, t.CaseID)
	case mailcase.ThreadReject:
		d = "rejected"
	default:
		d = string(t.Action)
	}
	if t.Signal != "" {
		d += " via " + t.Signal
		if t.Detail != "" {
			d += ": " + t.Detail
		}
	}
	if t.Reason != "" {
		d += " (" + t.Reason + ")"
	}
	return d
}

func describeAction(o *mailcase.Outcome) string {
	ref := caseRef(o.CaseNumber, o.CaseID)
	switch o.Action {
	case mailcase.ActionCreated:
		if ref == "" {
			return "would create a new case (dry run)"
		}
		return "created case " + ref
	case mailcase.ActionAppended:
		if o.CaseNumber == "" && o.Thread != nil && o.Thread.CaseNumber != "" {
			ref = o.Thread.CaseNumber
		}
		return "filed on case " + ref
	case mailcase.ActionReopened:
		return "filed on case " + ref + " and reopened it"
	case mailcase.ActionFiltered:
		return "filtered: a summary is recorded, the mail is not processed"
	case mailcase.ActionRecorded:
		return "recorded on the sender's record, no case"
	case mailcase.ActionRejected:
		return "rejected" + suffix(": ", o.Error)
	case mailcase.ActionDuplicate:
		return "duplicate: already filed" + suffix(" on case ", ref)
	case mailcase.ActionStructured:
		return "handled as structured mail" + suffix(", case ", ref)
	case mailcase.ActionQuarantined:
		return "quarantined" + suffix(": ", o.Error)
	case mailcase.ActionRetry:
		return "left for retry" + suffix(": ", o.Error)
	case "":
		return "(no action)"
	}
	return string(o.Action)
}

func caseRef(number string, id mailcase.CaseID) string {
	if number != "" {
		return number
	}
	return string(id)
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" && p != "<>" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// printScoresFired prints a route's scores and the rules that fired.
func printScoresFired(w io.Writer, r *mailcase.Route) {
	if len(r.Scores) > 0 {
		parts := make([]string, len(r.Scores))
		for i, s := range r.Scores {
			parts[i] = fmt.Sprintf("%s %.2f", s.Queue, s.Score)
		}
		field(w, "scores", strings.Join(parts, ", "))
	}
	if len(r.Fired) > 0 {
		field(w, "fired", strings.Join(r.Fired, ", "))
	}
}

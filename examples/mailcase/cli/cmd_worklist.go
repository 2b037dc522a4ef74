package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/routing"
	"github.com/emailcrm/emailcrm/threading"
)

// worklistsConfig is the worklists: section of the configuration: the
// group queues with their owners and members (kept in the store by every
// worklist command) and the correspondence templates of replies.
type worklistsConfig struct {
	Queues []worklistQueueConfig `yaml:"queues"`
	// AutoAccept makes an agent who opens an unowned item of a queue they
	// are a member of (worklist open) its owner, as worklist accept would;
	// false (the default) only shows the item. With queues declared, one of
	// them needs members.
	AutoAccept bool `yaml:"auto_accept"`
	// Templates are the reply templates by name (worklist reply
	// --template NAME): a subject and a text file, relative to the
	// configuration file; {{.Body}} is the agent's text.
	Templates map[string]templateFiles `yaml:"templates"`
}

type worklistQueueConfig struct {
	Name    string   `yaml:"name"`
	Owner   string   `yaml:"owner"`
	Address string   `yaml:"address"`
	Members []string `yaml:"members"`
}

// checkWorklists validates the worklists section and that mail is routed
// to group queues only: a queue named by a mailbox (default_queue,
// internal_queue, structured.admin_queue) or by its routing rules that is a
// person's address is refused, and, when worklist queues are declared,
// every queue named must be one of them. It runs once the plugin sections
// are merged.
func checkWorklists(cfg *runConfig, lines configLines) error {
	wl := &cfg.Worklists
	declared := map[string]bool{}
	for i, q := range wl.Queues {
		at := fmt.Sprintf("worklists.queues[%d]", i)
		switch {
		case strings.TrimSpace(q.Name) == "":
			return lines.errAt(at, "%s: a queue needs a name", at)
		case mailcase.IsPersonQueue(q.Name):
			return lines.errAt(at+".name", "%s: %q is a person's address: mail goes to group queues only", at, q.Name)
		case declared[q.Name]:
			return lines.errAt(at+".name", "%s: queue %q is declared twice", at, q.Name)
		case q.Owner != "" && mailcase.NormalizeAddress(q.Owner) == "":
			return lines.errAt(at+".owner", "%s.owner: %q is not a mail address", at, q.Owner)
		case q.Address != "" && mailcase.NormalizeAddress(q.Address) == "":
			return lines.errAt(at+".address", "%s.address: %q is not a mail address", at, q.Address)
		}
		for j, m := range q.Members {
			if mailcase.NormalizeAddress(m) == "" {
				p := fmt.Sprintf("%s.members[%d]", at, j)
				return lines.errAt(p, "%s: %q is not a mail address", p, m)
			}
		}
		declared[q.Name] = true
	}
	if wl.AutoAccept && len(wl.Queues) > 0 && !slices.ContainsFunc(wl.Queues, func(q worklistQueueConfig) bool { return len(q.Members) > 0 }) {
		return lines.errAt("worklists.auto_accept", "worklists.auto_accept: no queue of worklists.queues has members, so opening an item never makes anyone its owner")
	}
	for name, t := range wl.Templates {
		if strings.TrimSpace(t.Subject) == "" || t.TextFile == "" {
			return lines.errAt("worklists.templates", "worklists.templates.%s needs a subject and a text_file", name)
		}
	}
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		path := fmt.Sprintf("mailboxes[%d]", i)
		def := mb.DefaultQueue
		if def == "" {
			def = "default" // mailcase.Mailbox's default
		}
		named := []struct{ key, queue string }{
			{"default_queue", def}, {"internal_queue", mb.InternalQueue},
		}
		if mb.plugins != nil {
			named = append(named, struct{ key, queue string }{"structured.admin_queue", mb.plugins.Structured.AdminQueue})
			if rules := mb.plugins.Routing.Rules; rules != "" {
				r, err := routing.LoadFile(rules, nil)
				if err != nil {
					return lines.errAt(path+".routing.rules", "%s: routing rules: %v", path, err)
				}
				for _, q := range r.Queues() {
					named = append(named, struct{ key, queue string }{"routing.rules " + rules, q})
				}
			}
		}
		for _, n := range named {
			switch {
			case n.queue == "":
			case mailcase.IsPersonQueue(n.queue):
				return lines.errAt(path+"."+n.key, "%s.%s: queue %q is a person's address: mail is routed to group queues only",
					path, n.key, n.queue)
			case len(declared) > 0 && !declared[n.queue]:
				return lines.errAt(path+"."+n.key, "%s.%s: queue %q is not a group queue of worklists.queues", path, n.key, n.queue)
			}
		}
	}
	return nil
}

// syncQueues makes the store's queues those of the configuration: missing
// ones are created, owners and addresses set, members added and removed.
// Queues the configuration does not name are left alone.
func syncQueues(ctx context.Context, s *mailcase.Store, wl *worklistsConfig) error {
	if len(wl.Queues) == 0 {
		return nil
	}
	have, err := s.ListQueues(ctx)
	if err != nil {
		return fmt.Errorf("worklist queues: %w", err)
	}
	byName := map[string]mailcase.GroupQueue{}
	for _, q := range have {
		byName[q.Name] = q
	}
	for _, qc := range wl.Queues {
		want := &mailcase.GroupQueue{Name: qc.Name, Owner: qc.Owner, Address: qc.Address, Members: qc.Members}
		cur, ok := byName[qc.Name]
		if !ok {
			if err := s.CreateQueue(ctx, want); err != nil {
				return fmt.Errorf("worklist queue %s: %w", clean(qc.Name), err)
			}
			continue
		}
		if cur.Owner != mailcase.NormalizeAddress(qc.Owner) || cur.Address != mailcase.NormalizeAddress(qc.Address) {
			if err := s.UpdateQueue(ctx, want); err != nil {
				return fmt.Errorf("worklist queue %s: %w", clean(qc.Name), err)
			}
		}
		var members []string
		for _, m := range qc.Members {
			members = append(members, mailcase.NormalizeAddress(m))
		}
		for _, m := range members {
			if !slices.Contains(cur.Members, m) {
				if err := s.AddQueueMember(ctx, qc.Name, m); err != nil {
					return fmt.Errorf("worklist queue %s: %w", clean(qc.Name), err)
				}
			}
		}
		for _, m := range cur.Members {
			if !slices.Contains(members, m) {
				if err := s.RemoveQueueMember(ctx, qc.Name, m); err != nil {
					return fmt.Errorf("worklist queue %s: %w", clean(qc.Name), err)
				}
			}
		}
	}
	return nil
}

// workItemJSON is one element of worklist list --json; the field names are
// stable.
type workItemJSON struct {
	CaseID    string    `json:"case_id"`
	Number    string    `json:"number"`
	Subject   string    `json:"subject,omitempty"`
	Queue     string    `json:"queue,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	Status    string    `json:"status"`
	MailOpen  bool      `json:"mail_open"`
	UpdatedAt time.Time `json:"updated_at"`
}

// runWorklist lists work items, opens one and changes them as an agent:
// open, accept, release, reassign, reply, close, status and handled.
func runWorklist(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const synopsis = "list|open|accept|release|reassign|reply|close|status|handled --config FILE [--agent ADDR] [flags] [CASE [STATUS]]"
	fset := newFlagSet("worklist", synopsis, stderr)
	cfgPath := fset.String("config", "", "configuration file: its store, worklists (queues, members, owners, templates) and mailboxes")
	agent := fset.String("agent", "", "the agent acting (an address); required except for list")
	queue := fset.String("queue", "", "list: only this queue; reassign: the target group queue")
	member := fset.String("member", "", "reassign: the member of the target queue who becomes the owner (default: nobody)")
	owner := fset.String("owner", "", "list: only the items this agent owns (their own worklist)")
	unowned := fset.Bool("unowned", false, "list: only the items nobody owns (the group worklist)")
	status := fset.String("status", "", "list: only this status; reply: the status after the reply (for example waiting)")
	all := fset.Bool("all", false, "list: include closed and cancelled items")
	limit := fset.Int("limit", 50, "list: at most this many items, newest first (0: all)")
	asJSON := fset.Bool("json", false, "list: JSON instead of text")
	cancel := fset.Bool("cancel", false, "close: cancel the item instead (no answer needed)")
	mbName := fset.String("mailbox", "", "reply: mailbox the mail is sent for (default: the first of the file)")
	tplName := fset.String("template", "", "reply: a template of worklists.templates; the text is its {{.Body}}")
	file := fset.String("file", "-", "reply: file holding the text (- for standard input)")
	to := fset.String("to", "", "reply: recipients, comma-separated (default: the sender of the case's last mail)")
	key := fset.String("key", "", "reply: idempotency key (default: a hash of case, agent, recipients, template and text)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *cfgPath == "" {
		fset.Usage()
		return usageError("worklist needs a subcommand and --config FILE")
	}
	sub, rest := pos[0], pos[1:]
	want := map[string]int{"list": 0, "open": 1, "accept": 1, "release": 1, "reassign": 1, "reply": 1, "close": 1, "status": 2, "handled": 1}
	n, known := want[sub]
	switch {
	case !known:
		return usageError("unknown worklist subcommand %q (list, open, accept, release, reassign, reply, close, status or handled)", sub)
	case len(rest) != n:
		return usageError("worklist %s takes %d argument(s)", sub, n)
	case sub != "list" && *agent == "":
		return usageError("worklist %s needs --agent ADDR", sub)
	case sub == "reassign" && *queue == "":
		return usageError("worklist reassign needs --queue QUEUE")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	opened, err := openConfigStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer opened.Close()
	log := commandLogger(fset, stderr)
	changes, err := wireChanges(cfg, opened, log)
	if err != nil {
		return err
	}
	defer changes.Close()
	// The same driver, with the worklist's changes recorded in the event
	// log (the events of one change in one append) and reported to the
	// service-level clocks (not closed: opened owns the driver).
	store := mailcase.NewStore(opened.Driver(), &mailcase.StoreOptions{Logger: log,
		Worklist: changes.worklistOptions(cfg.Worklists.AutoAccept)})
	if !store.CanWorklist() {
		return errors.New("the store keeps no worklists")
	}
	if err := syncQueues(ctx, store, &cfg.Worklists); err != nil {
		return err
	}
	if sub == "list" {
		items, err := store.ListWorkItems(ctx, &mailcase.WorkItemFilter{Queue: *queue, Owner: *owner, Unowned: *unowned,
			Status: mailcase.CaseStatus(*status), Done: *all, Limit: max(*limit, 0)})
		if err != nil {
			return fmt.Errorf("list the worklist: %w", err)
		}
		return printWorkItems(stdout, items, *asJSON)
	}
	c, ok, err := findCase(ctx, store, rest[0])
	if err == nil && !ok {
		err = fmt.Errorf("no case %s", clean(rest[0]))
	}
	if err != nil {
		return err
	}
	var it mailcase.WorkItem
	switch sub {
	case "open":
		it, err = store.OpenWorkItem(ctx, c.ID, *agent)
	case "accept":
		it, err = store.AcceptWorkItem(ctx, c.ID, *agent)
	case "release":
		it, err = store.ReleaseWorkItem(ctx, c.ID, *agent)
	case "reassign":
		it, err = store.ReassignWorkItem(ctx, c.ID, *agent, *queue, *member)
	case "handled":
		it, err = store.MarkMailHandled(ctx, c.ID, *agent)
	case "status":
		it, err = store.SetWorkItemStatus(ctx, c.ID, *agent, mailcase.CaseStatus(rest[1]))
	case "close":
		st := mailcase.StatusClosed
		if *cancel {
			st = mailcase.StatusCancelled
		}
		it, err = store.SetWorkItemStatus(ctx, c.ID, *agent, st)
	case "reply":
		var id string
		id, err = worklistReply(ctx, cfg, *cfgPath, store, c, &replyFlags{agent: *agent, mailbox: *mbName, template: *tplName,
			file: *file, to: *to, key: *key}, stdin)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "queued the reply on case %s (outbox %s)\n", clean(c.Number), clean(id))
		if *status == "" {
			return nil
		}
		it, err = store.SetWorkItemStatus(ctx, c.ID, *agent, mailcase.CaseStatus(*status))
	}
	if err != nil {
		return fmt.Errorf("worklist %s of case %s: %w", sub, clean(c.Number), err)
	}
	printWorkItem(stdout, &it)
	return nil
}

func runWorklistStdin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWorklist(ctx, args, os.Stdin, stdout, stderr)
}

func printWorkItems(w io.Writer, items []mailcase.WorkItem, asJSON bool) error {
	if asJSON {
		out := make([]workItemJSON, 0, len(items))
		for _, it := range items {
			out = append(out, workItemJSON{CaseID: string(it.CaseID), Number: it.Number, Subject: it.Subject, Queue: it.Queue,
				Owner: it.Owner, Status: string(it.Status), MailOpen: it.MailOpen, UpdatedAt: it.UpdatedAt})
		}
		return writeJSON(w, out)
	}
	if len(items) == 0 {
		fmt.Fprintln(w, "no work items")
		return nil
	}
	for i := range items {
		printWorkItem(w, &items[i])
	}
	return nil
}

func printWorkItem(w io.Writer, it *mailcase.WorkItem) {
	owner, mailOpen := it.Owner, ""
	if owner == "" {
		owner = "(group)"
	}
	if it.MailOpen {
		mailOpen = " mail-open"
	}
	fmt.Fprintf(w, "case %s  queue %s  owner %s  %s%s  %s\n", clean(it.Number), clean(it.Queue), clean(owner),
		clean(string(it.Status)), mailOpen, clean(it.Subject))
}

type replyFlags struct{ agent, mailbox, template, file, to, key string }

// worklistReply queues the owner's reply on case c through the mailbox's
// Log Email path (outbox.Mailer.ReplyFromItem).
func worklistReply(ctx context.Context, cfg *runConfig, cfgPath string, store *mailcase.Store, c mailcase.Case, f *replyFlags, stdin io.Reader) (string, error) {
	mb, err := cfg.mailbox(f.mailbox)
	if f.mailbox == "" && len(cfg.Mailboxes) > 0 {
		mb, err = &cfg.Mailboxes[0], nil
	}
	if err != nil {
		return "", err
	}
	var body []byte
	if f.file == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, maxReplyText+1))
		if err == nil && len(body) > maxReplyText {
			return "", usageError("the reply's text is over %d bytes", maxReplyText)
		}
	} else {
		body, err = os.ReadFile(f.file)
	}
	if err != nil {
		return "", fmt.Errorf("read the text: %w", err)
	}
	var tpl *outbox.Template
	if f.template != "" {
		tf, ok := cfg.Worklists.Templates[f.template]
		if !ok {
			return "", usageError("no template %q in worklists.templates", f.template)
		}
		for _, p := range []*string{&tf.TextFile, &tf.HTMLFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(cfgPath), *p)
			}
		}
		ts, err := parseTemplates(map[string]templateFiles{f.template: tf})
		if err != nil {
			return "", err
		}
		tpl = ts[f.template]
	} else if strings.TrimSpace(string(body)) == "" {
		return "", usageError("the reply's text is empty")
	}
	th := mb.plugins.Threading
	secret, err := secretValue(th.KeyEnv, th.KeyFile)
	if err != nil {
		return "", fmt.Errorf("threading key: %w", err)
	}
	tkey := decodeThreadKey(secret)
	if len(tkey) == 0 {
		return "", errors.New("a reply needs the thread key (threading.key_env or key_file), so that the answer threads back")
	}
	domain := th.Domain
	if domain == "" {
		domain = mailcase.DomainOf(mb.Address)
	}
	codec, err := threading.NewCodec(tkey, domain)
	if err != nil {
		return "", err
	}
	tpls, err := mb.plugins.Replies.templates()
	if err != nil {
		return "", err
	}
	m, err := outbox.NewMailer(store, &outbox.MailerOptions{From: mail.Address{Name: mb.plugins.Replies.FromName, Address: mb.Address},
		FromAgent: on(mb.plugins.Replies.FromAgent), Codec: codec, LogEmail: tpls[outbox.KindLogEmail], Mailbox: mb.Name})
	if err != nil {
		return "", err
	}
	agent := mailcase.Employee{Email: mailcase.NormalizeAddress(f.agent)}
	if emp, ok, err := store.FindEmployee(ctx, f.agent); err != nil {
		return "", err
	} else if ok {
		agent = emp
	}
	r := &outbox.ItemReply{Key: f.key, Case: c.ID, Agent: agent, Template: tpl, Body: string(body)}
	if r.Key == "" {
		h := sha256.Sum256([]byte(strings.Join([]string{string(c.ID), agent.Email, f.to, f.template, string(body)}, "\x00")))
		r.Key = hex.EncodeToString(h[:])
	}
	if f.to != "" {
		as, err := mail.ParseAddressList(f.to)
		if err != nil {
			return "", usageError("recipients %q: %v", f.to, err)
		}
		for _, a := range as {
			r.To = append(r.To, *a)
		}
	}
	return m.ReplyFromItem(ctx, r)
}

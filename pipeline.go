package emailcrm

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/routing"
	"github.com/emailcrm/emailcrm/threading"
)

// Options configures NewPipeline. A nil *Options means defaults: the
// project's thread resolver (without a key: no signed signals), its reply
// extractor, and every new case in the mailbox's default queue.
type Options struct {
	// Pipeline holds the pipeline's own options (mailbox, logger,
	// OnResult, concurrency, filters, sender matcher, structured handler).
	// Its Threads, Extractor and Router are used as they are when set;
	// when nil, NewPipeline builds them as described below.
	Pipeline mailcase.Options
	// Threading configures the thread resolver built when Pipeline.Threads
	// is nil; nil means threading's defaults. The resolver always counts
	// the mailbox's address as one of ours; list the other mailboxes and
	// aliases in OwnAddresses. Its Logger defaults to Pipeline.Logger.
	Threading *threading.Options
	// RulesFile is a routing rules file (YAML or JSON, see package
	// routing) for the router built when Pipeline.Router is nil.
	RulesFile string
	// Rules is a routing configuration written in Go, used when RulesFile
	// is "". Neither means no router: every new case goes to the mailbox's
	// default queue.
	Rules *routing.Config
}

// A Pipeline is a mailcase.Pipeline together with the plugins it was
// built with.
type Pipeline struct {
	*mailcase.Pipeline
	// Plugins names the plugin of each role, in the order the stages
	// use them.
	Plugins []Plugin
}

// A Plugin names the implementation playing one role of the pipeline.
type Plugin struct {
	// Role is the role: "sender matcher", "structured mail", "reply
	// extractor", "thread resolver" or "router".
	Role string `json:"role"`
	// Name is the implementation, for example "threading.Resolver", or
	// the Go type of a plugin the caller set.
	Name string `json:"name"`
	// Detail says how it is configured, for example the closed-case
	// policy of the thread resolver.
	Detail string `json:"detail,omitempty"`
}

// String returns "role: name (detail)".
func (p Plugin) String() string {
	s := p.Role + ": " + p.Name
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// NewPipeline returns a pipeline over store with the project's plugins
// wired wherever opts leaves a role empty: threading's Resolver (signed
// Message-IDs and tokens when a key is set, subject numbers, the
// anti-hijack rule, the closed-case policy), threading's Extractor (quoted
// history and signatures stripped from the text filed as new), a routing
// Router when rules are given, and, when the store keeps an outbox, the
// outbox's bounce handler (outbox.Bounces, reporting "reply.bounced" to
// Pipeline.Events and Pipeline.OnEvent). The caller closes the pipeline.
func NewPipeline(store *mailcase.Store, opts *Options) (*Pipeline, error) {
	if store == nil {
		return nil, errors.New("emailcrm: new pipeline: nil store")
	}
	if opts == nil {
		opts = &Options{}
	}
	po := opts.Pipeline
	var plugins []Plugin

	if po.Senders == nil {
		plugins = append(plugins, Plugin{Role: "sender matcher", Name: "mailcase.StoreSenderMatcher",
			Detail: "contact by address, else employee, else account by domain"})
	} else {
		plugins = append(plugins, Plugin{Role: "sender matcher", Name: typeName(po.Senders)})
	}
	if po.Structured == nil {
		plugins = append(plugins, Plugin{Role: "structured mail", Name: "none", Detail: "all mail is unstructured"})
	} else {
		plugins = append(plugins, Plugin{Role: "structured mail", Name: typeName(po.Structured)})
	}

	switch {
	case po.Bounces != nil:
		plugins = append(plugins, Plugin{Role: "bounce handler", Name: typeName(po.Bounces)})
	case store.CanOutbox():
		// It reports "reply.bounced" where the pipeline reports the events
		// of the mail it files.
		po.Bounces = outbox.NewBounces(store, &outbox.BounceOptions{OnEvent: eventFunc(po.Events, po.OnEvent)})
		plugins = append(plugins, Plugin{Role: "bounce handler", Name: "outbox.Bounces",
			Detail: "a permanent bounce of a sent message marks it bounced and suppresses automatic mail to the recipient for 60 days"})
	default:
		plugins = append(plugins, Plugin{Role: "bounce handler", Name: "none", Detail: "the store keeps no outbox; bounces are only filed"})
	}

	if po.Extractor == nil {
		po.Extractor = threading.NewExtractor(nil)
		plugins = append(plugins, Plugin{Role: "reply extractor", Name: "threading.Extractor",
			Detail: "quoted history and signatures stripped"})
	} else {
		plugins = append(plugins, Plugin{Role: "reply extractor", Name: typeName(po.Extractor)})
	}

	if po.Threads == nil {
		var to threading.Options
		if opts.Threading != nil {
			to = *opts.Threading
		}
		if to.Logger == nil {
			to.Logger = po.Logger
		}
		r, err := threading.NewResolver(store, &to)
		if err != nil {
			return nil, fmt.Errorf("emailcrm: new pipeline: %w", err)
		}
		po.Threads = r
		plugins = append(plugins, Plugin{Role: "thread resolver", Name: "threading.Resolver",
			Detail: threadingDetail(&to, po.Mailbox.Address)})
	} else {
		plugins = append(plugins, Plugin{Role: "thread resolver", Name: typeName(po.Threads)})
	}

	switch {
	case po.Router != nil:
		plugins = append(plugins, Plugin{Role: "router", Name: typeName(po.Router)})
	case opts.RulesFile != "" || opts.Rules != nil:
		ro := &routing.Options{Cases: store, Logger: po.Logger}
		var (
			r      *routing.Router
			err    error
			detail string
		)
		if opts.RulesFile != "" {
			r, err = routing.LoadFile(opts.RulesFile, ro)
			detail = "rules " + opts.RulesFile
		} else {
			r, err = routing.Compile(opts.Rules, ro)
			detail = "rules written in Go"
			if opts.Rules.Source != "" {
				detail = "rules " + opts.Rules.Source
			}
		}
		if err != nil {
			return nil, fmt.Errorf("emailcrm: new pipeline: routing rules: %w", err)
		}
		po.Router = r
		plugins = append(plugins, Plugin{Role: "router", Name: "routing.Router",
			Detail: detail + ", " + strconv.Itoa(len(r.Queues())) + " queues"})
	default:
		plugins = append(plugins, Plugin{Role: "router", Name: "none", Detail: "every new case in the default queue"})
	}

	p, err := mailcase.NewPipeline(store, &po)
	if err != nil {
		return nil, fmt.Errorf("emailcrm: new pipeline: %w", err)
	}
	return &Pipeline{Pipeline: p, Plugins: plugins}, nil
}

// threadingDetail describes the resolver options o of the mailbox whose
// address is mailbox.
func threadingDetail(o *threading.Options, mailbox string) string {
	s := "signed Message-IDs and tokens "
	if len(o.Key) == 0 {
		s += "off (no key)"
	} else {
		s += "on"
	}
	policy := o.ClosedPolicy
	if policy == "" {
		policy = threading.PolicyReopen
	}
	s += ", closed cases: " + string(policy)
	if policy == threading.PolicyReopenWithin && o.ReopenWithin > 0 {
		s += " " + o.ReopenWithin.String()
	}
	// Distinct addresses besides the mailbox's own (a configuration file
	// lists every mailbox's, this one's included).
	own := map[string]bool{}
	for _, a := range o.OwnAddresses {
		if n := mailcase.NormalizeAddress(a); n != "" && n != mailcase.NormalizeAddress(mailbox) {
			own[n] = true
		}
	}
	return s + ", own addresses: the mailbox's and " + strconv.Itoa(len(own)) + " more"
}

// typeName is the Go type of a plugin the caller set.
func typeName(v any) string { return fmt.Sprintf("%T", v) }

// eventFunc returns a callback that reports an event outside a filing to
// rec (kept by the recorder itself, one event at a time) and then to
// onEvent, as the pipeline reports those of a filed mail; nil when both
// are nil.
func eventFunc(rec mailcase.EventRecorder, onEvent func(context.Context, string, mailcase.CaseID, map[string]any)) func(context.Context, string, mailcase.CaseID, map[string]any) {
	if rec == nil {
		return onEvent
	}
	return func(ctx context.Context, kind string, id mailcase.CaseID, data map[string]any) {
		if r, err := rec.PrepareEvent(kind, id, data); err == nil {
			rec.EventsFiled(ctx, []*driver.EventRecord{r}, false)
		}
		if onEvent != nil {
			onEvent(ctx, kind, id, data)
		}
	}
}

package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/emailcrm/emailcrm/mailcase"
)

// CaseGetter reads a case; *mailcase.Store satisfies it. The router uses it
// for thread routing only.
type CaseGetter interface {
	GetCase(ctx context.Context, id mailcase.CaseID) (mailcase.Case, bool, error)
}

var _ CaseGetter = (*mailcase.Store)(nil)

// Customer is what a CustomerHook knows about the sender.
type Customer struct {
	Kind    mailcase.SenderKind
	Contact *mailcase.Contact
	Account *mailcase.Account
	// SupportLevel is the contact's support level, or its account's when
	// the contact has none.
	SupportLevel string
}

// CustomerHook is customer-based routing code: it runs for mail
// whose sender matched a contact or account and returns what to set (the
// zero Effect sets nothing). It must not modify the records it is given,
// and must be safe for concurrent use when the pipeline routes mails
// concurrently. A queue it returns must be a declared queue; an
// undeclared queue or invalid priority is ignored and reported in the
// route's reason. An error fails the routing of the mail.
type CustomerHook func(ctx context.Context, c Customer) (Effect, error)

// Options configures Compile and LoadFile. A nil *Options means defaults.
type Options struct {
	// Cases looks up the case a reply threads to; nil disables
	// thread routing.
	Cases CaseGetter
	// Classifier, when set, is used by the classifier actions instead of
	// the configuration's model file.
	Classifier Classifier
	// CustomerHook is customer-based routing code, run before the
	// configuration's support-level rules.
	CustomerHook CustomerHook
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// ruleRef is a compiled rule: its id (kind:name) and effect.
type ruleRef struct {
	id     string
	effect Effect
}

type actionRef struct {
	ruleRef
	intent  string
	minConf float64
	rank    int
	order   int
}

// Router routes new cases by the rules of a Config. It implements
// mailcase.Router. A Router is immutable and safe for concurrent use; it
// does no I/O of its own except through Options.Cases, the classifier and
// the customer hook.
type Router struct {
	queues       map[string]bool
	queueList    []string
	defaultQueue string
	followThread bool
	maxText      int
	addresses    map[string]ruleRef
	senders      map[string]ruleRef
	domains      map[string]ruleRef
	customers    map[string]ruleRef
	actions      []actionRef
	classifier   Classifier
	keywords     *keywordScorer
	hook         CustomerHook
	cases        CaseGetter
	log          *slog.Logger
}

var _ mailcase.Router = (*Router)(nil)

// Evaluation stages, in order (see the package documentation).
const (
	kindBypass     = "bypass"
	kindThread     = "thread"
	kindSender     = "sender"
	kindDomain     = "domain"
	kindCustomer   = "customer"
	kindClassifier = "classifier"
	kindKeywords   = "keywords"
	kindAddress    = "address"
	kindDefault    = "default"
)

// LoadFile reads a YAML or JSON configuration file and compiles it.
func LoadFile(path string, opts *Options) (*Router, error) {
	cfg, err := ReadConfigFile(path)
	if err != nil {
		return nil, err
	}
	return Compile(cfg, opts)
}

// Compile validates cfg and builds a Router. Every problem found is
// reported, each as a *ConfigError naming the file, line and rule when
// known, joined with errors.Join; all match ErrInvalidConfig.
func Compile(cfg *Config, opts *Options) (*Router, error) {
	if cfg == nil {
		return nil, &ConfigError{Msg: "no configuration"}
	}
	o := opts.withDefaults()
	c := &compiler{cfg: cfg}
	r := &Router{
		queues: map[string]bool{}, followThread: cfg.FollowThread == nil || *cfg.FollowThread,
		addresses: map[string]ruleRef{}, senders: map[string]ruleRef{}, domains: map[string]ruleRef{},
		customers: map[string]ruleRef{}, hook: o.CustomerHook, cases: o.Cases, log: o.Logger,
		classifier: o.Classifier,
	}
	if cfg.Version != 0 && cfg.Version != 1 {
		c.errf(0, "", "unsupported version %d (this build reads version 1)", cfg.Version)
	}
	r.maxText = cfg.MaxText
	if r.maxText == 0 {
		r.maxText = maxClassifyText
	} else if r.maxText < 0 {
		c.errf(0, "", "max_text must not be negative")
	}
	// Queues.
	if len(cfg.Queues) == 0 {
		c.errf(0, "", "no queues declared: list the group queues under queues")
	}
	for _, q := range cfg.Queues {
		if msg := queueNameProblem(q); msg != "" {
			c.errf(0, "", "queue %q: %s", q, msg)
			continue
		}
		if r.queues[q] {
			c.errf(0, "", "queue %q declared twice", q)
			continue
		}
		r.queues[q] = true
		r.queueList = append(r.queueList, q)
	}
	r.defaultQueue = cfg.DefaultQueue
	if r.defaultQueue == "" {
		r.defaultQueue = "default"
	} else if !r.queues[r.defaultQueue] {
		c.errf(0, "", "default_queue %q is not a declared queue", r.defaultQueue)
	}
	n := normalizer{keepAccents: cfg.Text.KeepAccents}

	// Routing addresses.
	for _, a := range cfg.Addresses {
		addr := mailcase.NormalizeAddress(a.Address)
		id := ruleID(kindAddress, a.Name, addr, a.Address)
		switch {
		case addr == "":
			c.errf(a.Line, id, "address %q is not a mail address", a.Address)
			continue
		case r.addresses[addr].id != "":
			c.errf(a.Line, id, "address %s already has rule %s", addr, r.addresses[addr].id)
			continue
		}
		if c.effect(a.Line, id, a.Effect, r) {
			r.addresses[addr] = ruleRef{id: id, effect: a.Effect}
		}
	}
	// Senders.
	for _, s := range cfg.Senders {
		switch {
		case (s.Address == "") == (s.Domain == ""):
			c.errf(s.Line, ruleID(kindSender, s.Name, "", s.Address+s.Domain), "set exactly one of address and domain")
		case s.Address != "":
			addr := mailcase.NormalizeAddress(s.Address)
			id := ruleID(kindSender, s.Name, addr, s.Address)
			if addr == "" {
				c.errf(s.Line, id, "address %q is not a mail address", s.Address)
			} else if prev := r.senders[addr].id; prev != "" {
				c.errf(s.Line, id, "sender %s already has rule %s", addr, prev)
			} else if c.effect(s.Line, id, s.Effect, r) {
				r.senders[addr] = ruleRef{id: id, effect: s.Effect}
			}
		default:
			d := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s.Domain), "@"), "*.")
			dom := mailcase.NormalizeDomain(d)
			id := ruleID(kindDomain, s.Name, dom, s.Domain)
			if dom == "" {
				c.errf(s.Line, id, "domain %q is not a domain", s.Domain)
			} else if prev := r.domains[dom].id; prev != "" {
				c.errf(s.Line, id, "domain %s already has rule %s", dom, prev)
			} else if c.effect(s.Line, id, s.Effect, r) {
				r.domains[dom] = ruleRef{id: id, effect: s.Effect}
			}
		}
	}
	// Customers.
	for _, cr := range cfg.Customers {
		lvl := strings.ToLower(strings.TrimSpace(cr.SupportLevel))
		id := ruleID(kindCustomer, cr.Name, lvl, cr.SupportLevel)
		if lvl == "" {
			c.errf(cr.Line, id, "support_level is empty")
			continue
		}
		if prev := r.customers[lvl].id; prev != "" {
			c.errf(cr.Line, id, "support level %q already has rule %s", lvl, prev)
			continue
		}
		if c.effect(cr.Line, id, cr.Effect, r) {
			r.customers[lvl] = ruleRef{id: id, effect: cr.Effect}
		}
	}
	// Classifier actions.
	if cc := cfg.Classifier; cc != nil {
		c.compileActions(cc, r)
		if r.classifier == nil && cc.Model != "" {
			path := cc.Model
			if !filepath.IsAbs(path) && cfg.Source != "" {
				path = filepath.Join(filepath.Dir(cfg.Source), path)
			}
			nb, err := readModelFile(path)
			if err != nil {
				c.errf(cc.Line, "", "classifier: %v", err)
			} else {
				r.classifier = nb
			}
		}
		if r.classifier == nil && cc.Model == "" && len(cc.Actions) > 0 {
			c.errf(cc.Line, "", "classifier actions need a model (classifier.model) or Options.Classifier")
		}
	}
	// Keywords.
	if kc := cfg.Keywords; kc != nil {
		r.keywords = c.compileKeywords(kc, n, r)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// queueNameProblem says what is wrong with a queue name, or "".
func queueNameProblem(q string) string {
	switch {
	case strings.TrimSpace(q) == "":
		return "empty queue name"
	case q != strings.TrimSpace(q):
		return "queue name has surrounding space"
	case strings.Contains(q, "@"):
		return "looks like a mail address: mail is routed to group queues, never to a person"
	case len(q) > 200:
		return "queue name longer than 200 bytes"
	}
	for _, r := range q {
		if unicode.IsControl(r) {
			return "queue name has control characters"
		}
	}
	return ""
}

// ruleID returns "kind:name", name being the rule's name or else its key.
func ruleID(kind, name, key, raw string) string {
	if name = strings.TrimSpace(name); name != "" {
		return kind + ":" + name
	}
	if key == "" {
		key = strings.TrimSpace(raw)
	}
	if key == "" {
		key = "?"
	}
	return kind + ":" + key
}

type compiler struct {
	cfg  *Config
	errs []error
	ids  map[string]int // rule id -> line, for duplicates
}

func (c *compiler) errf(line int, rule, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{File: c.cfg.Source, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	if len(c.errs) == 1 {
		return c.errs[0]
	}
	return errors.Join(c.errs...)
}

// unique reports a duplicate rule id.
func (c *compiler) unique(line int, id string) bool {
	if c.ids == nil {
		c.ids = map[string]int{}
	}
	if prev, ok := c.ids[id]; ok {
		if prev > 0 {
			c.errf(line, id, "rule name used twice (first at line %d)", prev)
		} else {
			c.errf(line, id, "rule name used twice")
		}
		return false
	}
	c.ids[id] = line
	return true
}

// effect validates an effect; it reports whether the rule is usable.
func (c *compiler) effect(line int, id string, e Effect, r *Router) bool {
	ok := c.unique(line, id)
	if e.IsZero() {
		c.errf(line, id, "the rule sets nothing (give a queue, priority, origin or category)")
		return false
	}
	if e.Queue != "" && !r.queues[e.Queue] {
		c.errf(line, id, "queue %q is not a declared queue (declared: %s); mail is routed to group queues only",
			e.Queue, strings.Join(r.queueList, ", "))
		ok = false
	}
	if e.Priority != "" && !validPriority(e.Priority) {
		c.errf(line, id, "priority %q is not one of low, normal, high, urgent", e.Priority)
		ok = false
	}
	for _, f := range []struct{ name, v string }{{"origin", e.Origin}, {"category", e.Category}} {
		if len(f.v) > 200 || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			c.errf(line, id, "%s must be at most 200 bytes without control characters", f.name)
			ok = false
		}
	}
	return ok
}

func validPriority(p mailcase.Priority) bool {
	switch p {
	case mailcase.PriorityLow, mailcase.PriorityNormal, mailcase.PriorityHigh, mailcase.PriorityUrgent:
		return true
	}
	return false
}

func (c *compiler) compileActions(cc *ClassifierConfig, r *Router) {
	for i, a := range cc.Actions {
		intent := strings.TrimSpace(a.Intent)
		id := ruleID(kindClassifier, a.Name, intent, "")
		if intent == "" {
			c.errf(a.Line, id, "intent (the classifier category) is empty")
			continue
		}
		if math.IsNaN(a.MinConfidence) || a.MinConfidence < 0 || a.MinConfidence > 1 {
			c.errf(a.Line, id, "min_confidence %v is not between 0 and 1", a.MinConfidence)
			continue
		}
		e := a.Effect
		if e.Category == "" {
			e.Category = intent
		}
		if c.effect(a.Line, id, e, r) {
			r.actions = append(r.actions, actionRef{ruleRef: ruleRef{id: id, effect: e}, intent: intent,
				minConf: a.MinConfidence, rank: a.Rank, order: i})
		}
	}
	sort.SliceStable(r.actions, func(i, j int) bool { return r.actions[i].rank > r.actions[j].rank })
}

func (c *compiler) compileKeywords(kc *KeywordConfig, n normalizer, r *Router) *keywordScorer {
	threshold, sw, bw, maxHits := kc.Threshold, kc.SubjectWeight, kc.BodyWeight, kc.MaxHits
	bad := func(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	if bad(threshold) || bad(sw) || bad(bw) || maxHits < 0 {
		c.errf(kc.Line, "", "keywords: threshold, subject_weight, body_weight and max_hits must be positive numbers (0 means the default)")
		return nil
	}
	if threshold == 0 {
		threshold = 1
	}
	if sw == 0 {
		sw = 2
	}
	if bw == 0 {
		bw = 1
	}
	if maxHits == 0 {
		maxHits = 3
	}
	if len(kc.Sets) == 0 {
		c.errf(kc.Line, "", "keywords: no sets")
		return nil
	}
	var (
		sets       []kwSet
		patterns   []string
		patIndex   = map[string]int{}
		patEntries [][]int32
		entries    []kwEntry
		queues     = map[string]string{}
	)
	for _, s := range kc.Sets {
		id := ruleID(kindKeywords, s.Name, s.Queue, "")
		if s.Queue == "" {
			c.errf(s.Line, id, "a keyword set needs a queue")
			continue
		}
		if prev, ok := queues[s.Queue]; ok {
			c.errf(s.Line, id, "queue %q already has keyword set %s", s.Queue, prev)
			continue
		}
		queues[s.Queue] = id
		if !c.effect(s.Line, id, s.Effect, r) {
			continue
		}
		if len(s.Words) == 0 {
			c.errf(s.Line, id, "no words")
			continue
		}
		set := len(sets)
		okSet := true
		add := func(kw Keyword, neg bool) {
			line := kw.Line
			if line == 0 {
				line = s.Line
			}
			if kw.Weight < 0 || math.IsNaN(kw.Weight) || math.IsInf(kw.Weight, 0) {
				c.errf(line, id, "keyword %q: weight must be positive (list negative keywords under negative)", kw.Text)
				okSet = false
				return
			}
			pat, left, right, ok := keywordPattern(n, kw.Text)
			if !ok {
				c.errf(line, id, "keyword %q is empty or has a '*' inside (only a leading or trailing '*' is allowed)", kw.Text)
				okSet = false
				return
			}
			w := kw.Weight
			if w == 0 {
				w = 1
			}
			if neg {
				w = -w
			}
			pi, seen := patIndex[pat]
			if !seen {
				pi = len(patterns)
				patIndex[pat] = pi
				patterns = append(patterns, pat)
				patEntries = append(patEntries, nil)
			}
			f, l := firstLast(pat)
			patEntries[pi] = append(patEntries[pi], int32(len(entries)))
			entries = append(entries, kwEntry{set: set, text: strings.TrimSpace(kw.Text), weight: w,
				left: left, right: right, first: f, last: l})
		}
		for _, kw := range s.Words {
			add(kw, false)
		}
		for _, kw := range s.Negative {
			add(kw, true)
		}
		if okSet {
			sets = append(sets, kwSet{id: id, effect: s.Effect, index: set})
		}
	}
	if len(c.errs) > 0 {
		return nil
	}
	ks, err := newKeywordScorer(n, sets, patterns, patEntries, entries, threshold, sw, bw, maxHits)
	if err != nil {
		c.errf(kc.Line, "", "keywords: %v", err)
		return nil
	}
	return ks
}

// Queues returns the declared queues in declaration order.
func (r *Router) Queues() []string { return append([]string(nil), r.queueList...) }

// decision accumulates a route: each field takes the value of the first
// fired rule that sets it.
type decision struct {
	route mailcase.Route
	by    map[string]string // field -> rule id
	why   map[string]string // rule id -> explanation
	notes []string
}

func (d *decision) fire(id string, e Effect, why string) {
	d.route.Fired = append(d.route.Fired, id)
	if why != "" {
		d.why[id] = why
	}
	set := func(field string, cur *string, v string) {
		if v != "" && *cur == "" {
			*cur = v
			d.by[field] = id
		}
	}
	set("queue", &d.route.Queue, e.Queue)
	p := string(d.route.Priority)
	set("priority", &p, string(e.Priority))
	d.route.Priority = mailcase.Priority(p)
	set("origin", &d.route.Origin, e.Origin)
	set("category", &d.route.Category, e.Category)
}

// Route decides the queue, priority, origin and category of a mail that
// opens a new case, and explains the decision. See the package
// documentation for the evaluation order.
func (r *Router) Route(ctx context.Context, d *mailcase.Delivery) (mailcase.Route, error) {
	if d == nil || d.Message == nil {
		return mailcase.Route{}, errors.New("routing: delivery without a message")
	}
	if err := ctx.Err(); err != nil {
		return mailcase.Route{}, err
	}
	m := d.Message
	defQueue, defWhy := r.defaultQueue, "configuration default queue"
	if d.Mailbox != nil && d.Mailbox.DefaultQueue != "" {
		defQueue, defWhy = d.Mailbox.DefaultQueue, "default queue of mailbox "+mailboxName(d.Mailbox)
	}
	if d.Mailbox != nil && d.Mailbox.Bypass {
		return mailcase.Route{
			Queue: defQueue, Rule: kindBypass, Fired: []string{kindBypass},
			Reason: "mailbox " + mailboxName(d.Mailbox) + " bypasses routing: queue " + defQueue + " (" + defWhy + ")",
		}, nil
	}
	dec := &decision{by: map[string]string{}, why: map[string]string{}}
	if err := r.threadStage(ctx, d, dec); err != nil {
		return mailcase.Route{}, err
	}
	r.senderStage(m, dec)
	if err := r.customerStage(ctx, d, dec); err != nil {
		return mailcase.Route{}, err
	}
	body := m.ReplyText
	if strings.TrimSpace(body) == "" {
		body = m.Text
	}
	subject, body := cutText(m.Subject, r.maxText), cutText(body, r.maxText)
	if err := r.classifierStage(ctx, subject, body, dec); err != nil {
		return mailcase.Route{}, err
	}
	r.keywordStage(subject, body, dec)
	r.addressStage(d, dec)
	if dec.route.Queue == "" {
		dec.route.Queue = defQueue
		dec.by["queue"] = kindDefault
		dec.why[kindDefault] = "no rule chose a queue: " + defWhy
	}
	dec.route.Rule = dec.by["queue"]
	dec.route.Reason = dec.reason()
	return dec.route, nil
}

// threadStage: a reply opening a new case follows the old case's queue.
func (r *Router) threadStage(ctx context.Context, d *mailcase.Delivery, dec *decision) error {
	if !r.followThread || r.cases == nil || d.Thread.CaseID == "" {
		return nil
	}
	c, ok, err := r.cases.GetCase(ctx, d.Thread.CaseID)
	if err != nil {
		return fmt.Errorf("routing: look up threaded case %s: %w", d.Thread.CaseID, err)
	}
	name := string(d.Thread.CaseID)
	if ok && c.Number != "" {
		name = c.Number
	}
	switch {
	case !ok:
		dec.notes = append(dec.notes, "threaded case "+name+" not found")
	case c.Queue == "":
		dec.notes = append(dec.notes, "threaded case "+name+" has no queue")
	case !r.queues[c.Queue]:
		dec.notes = append(dec.notes, "threaded case "+name+" is in undeclared queue "+strconv.Quote(c.Queue)+", not followed")
	default:
		dec.fire(kindThread+":"+name, Effect{Queue: c.Queue}, "reply to case "+name+", which is in queue "+c.Queue)
	}
	return nil
}

// senderStage fires the sender address rule, then the domain rules from
// the most specific domain to its parents.
func (r *Router) senderStage(m *mailcase.Message, dec *decision) {
	from := mailcase.NormalizeAddress(m.From.Email)
	if from == "" {
		return
	}
	if rr, ok := r.senders[from]; ok {
		dec.fire(rr.id, rr.effect, "sender "+from)
	}
	full := mailcase.DomainOf(from)
	for dom := full; dom != ""; {
		if rr, ok := r.domains[dom]; ok {
			dec.fire(rr.id, rr.effect, "sender domain "+full+" is in "+dom)
		}
		i := strings.IndexByte(dom, '.')
		if i < 0 {
			break
		}
		dom = dom[i+1:]
	}
}

// customerStage runs the customer hook, then the support-level rule.
func (r *Router) customerStage(ctx context.Context, d *mailcase.Delivery, dec *decision) error {
	cust, ok := customerOf(d.Sender)
	if !ok {
		return nil
	}
	if r.hook != nil {
		e, err := r.hook(ctx, cust)
		if err != nil {
			return fmt.Errorf("routing: customer hook: %w", err)
		}
		if e.Queue != "" && !r.queues[e.Queue] {
			dec.notes = append(dec.notes, "customer hook returned undeclared queue "+strconv.Quote(e.Queue)+", ignored")
			r.log.WarnContext(ctx, "routing: customer hook returned an undeclared queue", "queue", e.Queue)
			e.Queue = ""
		}
		if e.Priority != "" && !validPriority(e.Priority) {
			dec.notes = append(dec.notes, "customer hook returned invalid priority "+strconv.Quote(string(e.Priority))+", ignored")
			e.Priority = ""
		}
		if !e.IsZero() {
			dec.fire(kindCustomer+":hook", e, "customer hook for "+cust.describe())
		}
	}
	if lvl := strings.ToLower(strings.TrimSpace(cust.SupportLevel)); lvl != "" {
		if rr, ok := r.customers[lvl]; ok {
			dec.fire(rr.id, rr.effect, cust.describe()+" has support level "+lvl)
		}
	}
	return nil
}

// classifierStage runs the highest-ranked eligible classifier action.
func (r *Router) classifierStage(ctx context.Context, subject, body string, dec *decision) error {
	if r.classifier == nil || len(r.actions) == 0 {
		return nil
	}
	preds, err := r.classifier.Classify(ctx, Document{Subject: subject, Body: body})
	if err != nil {
		return fmt.Errorf("routing: classifier: %w", err)
	}
	conf := make(map[string]float64, len(preds))
	for _, p := range preds {
		if _, dup := conf[p.Category]; !dup {
			conf[p.Category] = p.Confidence
		}
	}
	ran := false
	var skipped []string
	for _, a := range r.actions {
		c, ok := conf[a.intent]
		if !ok || c < a.minConf || math.IsNaN(c) {
			continue
		}
		if ran {
			skipped = append(skipped, a.id)
			continue
		}
		ran = true
		dec.fire(a.id, a.effect, fmt.Sprintf("classifier predicts %s with confidence %.2f (min %.2f, rank %d)",
			a.intent, c, a.minConf, a.rank))
	}
	dec.notes = append(dec.notes, "classifier: "+formatPredictions(preds, 3))
	if len(skipped) > 0 {
		dec.notes = append(dec.notes, "lower-ranked eligible actions not run: "+strings.Join(skipped, ", "))
	}
	return nil
}

// keywordStage scores the keyword sets and fires the winner, if any.
func (r *Router) keywordStage(subject, body string, dec *decision) {
	k := r.keywords
	if k == nil {
		return
	}
	res := k.score(subject, body)
	win, order := k.best(res)
	for _, i := range order {
		dec.route.Scores = append(dec.route.Scores, mailcase.QueueScore{Queue: k.sets[i].effect.Queue, Score: round2(res.score[i])})
	}
	switch {
	case win >= 0:
		s := k.sets[win]
		why := fmt.Sprintf("keyword score %s ≥ threshold %s (%s)", fmtNum(res.score[win]), fmtNum(k.threshold), formatHits(res.hits[win], 6))
		if len(order) > 1 && res.score[order[1]] == res.score[win] {
			why += "; tie broken by " + tieRule(res, win, order[1])
		}
		dec.fire(s.id, s.effect, why)
	case len(order) > 0:
		dec.notes = append(dec.notes, fmt.Sprintf("best keyword score %s below threshold %s", fmtNum(res.score[order[0]]), fmtNum(k.threshold)))
	}
}

// addressStage fires the rules of the routing addresses: To and Cc
// recipients in order, then the mailbox address.
func (r *Router) addressStage(d *mailcase.Delivery, dec *decision) {
	seen := map[string]bool{}
	addrs := d.Message.Recipients()
	if d.Mailbox != nil {
		addrs = append(addrs, mailcase.Address{Email: d.Mailbox.Address})
	}
	for _, a := range addrs {
		e := mailcase.NormalizeAddress(a.Email)
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		if rr, ok := r.addresses[e]; ok {
			dec.fire(rr.id, rr.effect, "routing address "+e)
		}
	}
}

func (d *decision) reason() string {
	var parts []string
	for _, f := range []struct{ field, value string }{
		{"queue", d.route.Queue}, {"priority", string(d.route.Priority)},
		{"origin", d.route.Origin}, {"category", d.route.Category},
	} {
		id, ok := d.by[f.field]
		if !ok {
			continue
		}
		s := f.field + " " + strconv.Quote(f.value) + " by " + id
		if w := d.why[id]; w != "" {
			s += " (" + w + ")"
		}
		parts = append(parts, s)
	}
	var other []string
	for _, id := range d.route.Fired {
		used := false
		for _, by := range d.by {
			if by == id {
				used = true
			}
		}
		if !used {
			other = append(other, id)
		}
	}
	if len(other) > 0 {
		parts = append(parts, "also matched, overridden by earlier rules: "+strings.Join(other, ", "))
	}
	parts = append(parts, d.notes...)
	return strings.Join(parts, "; ")
}

func (c Customer) describe() string {
	switch {
	case c.Contact != nil:
		return "contact " + c.Contact.ID
	case c.Account != nil:
		return "account " + c.Account.ID
	}
	return "customer"
}

// customerOf returns the customer of a sender match, if it is one.
func customerOf(s mailcase.SenderMatch) (Customer, bool) {
	if s.Kind != mailcase.SenderContact && s.Kind != mailcase.SenderAccount {
		return Customer{}, false
	}
	if s.Contact == nil && s.Account == nil {
		return Customer{}, false
	}
	c := Customer{Kind: s.Kind, Contact: s.Contact, Account: s.Account}
	if s.Contact != nil && s.Contact.SupportLevel != "" {
		c.SupportLevel = s.Contact.SupportLevel
	} else if s.Account != nil {
		c.SupportLevel = s.Account.SupportLevel
	}
	return c, true
}

func mailboxName(m *mailcase.Mailbox) string {
	if m.Name == "" {
		return "default"
	}
	return m.Name
}

func tieRule(res kwResult, a, b int) string {
	if res.subject[a] != res.subject[b] {
		return "higher subject score"
	}
	return "declaration order"
}

func formatPredictions(p []Prediction, n int) string {
	if len(p) == 0 {
		return "no prediction"
	}
	var parts []string
	for i, x := range p {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", x.Category, x.Confidence))
	}
	return strings.Join(parts, ", ")
}

func formatHits(h []kwHit, n int) string {
	var parts []string
	for i, x := range h {
		if i == n {
			parts = append(parts, "…")
			break
		}
		s := strconv.Quote(x.text)
		if x.neg {
			s = "-" + s
		}
		if x.count > 1 {
			s += "×" + strconv.Itoa(x.count)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func fmtNum(v float64) string { return strconv.FormatFloat(round2(v), 'f', -1, 64) }

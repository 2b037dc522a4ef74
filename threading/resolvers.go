package threading

import (
	"context"
	"fmt"
	"strings"

	"github.com/emailcrm/emailcrm/internal/htmltext"
	"github.com/emailcrm/emailcrm/mailcase"
)

// Signals recorded in ThreadDecision.Signal.
const (
	SignalMessageIDSigned = "message-id-signed"
	SignalMessageIDStore  = "message-id-store"
	SignalTokenSubject    = "token-subject"
	SignalTokenBody       = "token-body"
	SignalContextID       = "context-id"
	SignalSharedReference = "shared-reference"
	SignalSubjectNumber   = "subject-number"
	SignalThreadIndex     = "thread-index"
)

// hit is a case found by one resolver.
type hit struct {
	c      mailcase.Case
	signal string
	detail string
	// trusted hits (signed markers, Message-IDs) skip the anti-hijack
	// check; bare numbers do not.
	trusted bool
}

// resolver is one rung of the ladder. When ok is false, note may explain
// what was seen and refused (a forged signature, an unknown number).
type resolver interface {
	resolve(ctx context.Context, in *input) (h hit, ok bool, note string, err error)
}

// input is one ResolveThread call's delivery with what the resolvers
// derive from it lazily and share: the HTML body is rendered to text at
// most once per delivery, whichever resolvers need it. It is not shared
// between calls or goroutines.
type input struct {
	d        *mailcase.Delivery
	html     string
	rendered bool
	// renders counts HTML renderings (tests check it is at most 1).
	renders int
}

// bodyTexts returns the texts searched for body markers: the text body,
// and the HTML rendered to text.
func (in *input) bodyTexts() []string {
	m := in.d.Message
	if m.HTML == "" {
		return []string{m.Text}
	}
	if !in.rendered {
		in.html = htmltext.Plain(m.HTML)
		in.rendered = true
		in.renders++
	}
	return []string{m.Text, in.html}
}

// Bounds on the work and the decision text a hostile mail can cause.
const (
	// maxMarkerLookups bounds the store lookups of one resolver: markers
	// are deduplicated by the case they name, and at most this many
	// distinct cases are looked up.
	maxMarkerLookups = 5
	// maxNotes bounds the notes one resolver records in the Reason.
	maxNotes = 3
)

// notes collects a resolver's notes, keeping the first maxNotes and
// counting the rest.
type notes struct {
	list    []string
	dropped int
}

func (n *notes) add(format string, args ...any) {
	if len(n.list) >= maxNotes {
		n.dropped++
		return
	}
	n.list = append(n.list, fmt.Sprintf(format, args...))
}

func (n *notes) String() string {
	s := strings.Join(n.list, "; ")
	if n.dropped > 0 {
		s += fmt.Sprintf("; %d more similar notes omitted", n.dropped)
	}
	return s
}

// lookups deduplicates and bounds the store lookups of one resolver.
type lookups struct {
	seen map[string]bool
	// capped is set when a lookup was refused because of the bound.
	capped bool
}

// allow reports whether key should be looked up: it was not looked up
// before and the bound is not reached.
func (l *lookups) allow(key string) bool {
	if l.seen[key] {
		return false
	}
	if len(l.seen) >= maxMarkerLookups {
		l.capped = true
		return false
	}
	if l.seen == nil {
		l.seen = make(map[string]bool)
	}
	l.seen[key] = true
	return true
}

// signedIDResolver decodes our own signed Message-IDs in In-Reply-To and
// References, the most recent first (at most limit of them). No lookup is
// needed to know the case; GetCase fetches its status, once per distinct
// case and for at most maxMarkerLookups cases.
type signedIDResolver struct {
	codec *Codec
	idx   Index
	limit int
}

// threadIDs returns the Message-IDs a mail refers to, most specific last:
// References, In-Reply-To, and a bounce's original Message-ID.
func threadIDs(d *mailcase.Delivery) []string {
	ids := d.Message.ThreadIDs()
	if o := mailcase.NormalizeMessageID(d.Bounce.OriginalMessageID); o != "" {
		ids = append(ids, o)
	}
	return ids
}

func (r signedIDResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	ids := threadIDs(in.d)
	if len(ids) > r.limit {
		ids = ids[len(ids)-r.limit:]
	}
	var ns notes
	var lk lookups
	for i := len(ids) - 1; i >= 0; i-- {
		id, ok := r.codec.ParseMessageID(ids[i])
		if !ok {
			if looksSigned(ids[i]) {
				ns.add("Message-ID <%s> has a bad signature: ignored", clip(ids[i], 80))
			}
			continue
		}
		if !lk.allow(string(id)) {
			continue
		}
		c, found, err := r.idx.GetCase(ctx, id)
		if err != nil {
			return hit{}, false, "", fmt.Errorf("threading: get case %q: %w", id, err)
		}
		if !found {
			ns.add("signed Message-ID names case %q, which does not exist", clip(string(id), 80))
			continue
		}
		return hit{c: c, signal: SignalMessageIDSigned, detail: "<" + clip(ids[i], 400) + ">", trusted: true}, true, "", nil
	}
	if lk.capped {
		ns.add("signed Message-IDs name more than %d cases; only %d looked up", maxMarkerLookups, maxMarkerLookups)
	}
	return hit{}, false, ns.String(), nil
}

func looksSigned(id string) bool {
	return len(id) > 2 && (id[0] == 'c' || id[0] == 'C') && id[1] == '.' && strings.Count(id[:max(strings.IndexByte(id, '@'), 0)], ".") == 3
}

// storeIDResolver looks the mail's In-Reply-To and References up in the
// store (Message-IDs the system received or sent), the most recent first,
// in chunks so that References of any length work.
type storeIDResolver struct {
	idx   Index
	limit int
}

const lookupChunk = 64

func (r storeIDResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	ids := threadIDs(in.d)
	note := ""
	if len(ids) > r.limit {
		note = fmt.Sprintf("%d Message-IDs referenced; only the last %d looked up", len(ids), r.limit)
		ids = ids[len(ids)-r.limit:]
	}
	for end := len(ids); end > 0; end -= lookupChunk {
		start := max(end-lookupChunk, 0)
		c, ok, err := r.idx.LookupThread(ctx, ids[start:end]...)
		if err != nil {
			return hit{}, false, "", fmt.Errorf("threading: lookup thread: %w", err)
		}
		if ok {
			return hit{c: c, signal: SignalMessageIDStore, detail: "a referenced Message-ID is filed on the case", trusted: true}, true, note, nil
		}
	}
	return hit{}, false, note, nil
}

// sharedRefResolver finds the case of a filed mail that refers to one of
// the Message-IDs this mail refers to: two replies to a mail the mailbox
// never received (the first sent to someone else, the mailbox in Cc of the
// answers). The shared ID is unsigned and names no mail we hold, so the
// hit is not trusted: only a sender on the case threads through it.
type sharedRefResolver struct {
	idx   ReferenceIndex
	limit int
}

func (r sharedRefResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	ids := threadIDs(in.d)
	if len(ids) > r.limit {
		ids = ids[len(ids)-r.limit:]
	}
	if len(ids) == 0 {
		return hit{}, false, "", nil
	}
	c, ok, err := r.idx.LookupReference(ctx, ids...)
	if err != nil {
		return hit{}, false, "", fmt.Errorf("threading: lookup reference: %w", err)
	}
	if !ok {
		return hit{}, false, "", nil
	}
	return hit{c: c, signal: SignalSharedReference, detail: "a Message-ID this mail refers to is also referred to by a mail of the case"}, true, "", nil
}

// tokenResolver finds a signed thread token ([ref:...]) in the subject or
// the body.
type tokenResolver struct {
	codec *Codec
	idx   Index
	body  bool
}

func (r tokenResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	signal := SignalTokenSubject
	texts := []string{in.d.Message.Subject}
	if r.body {
		signal = SignalTokenBody
		texts = in.bodyTexts()
	}
	var ns notes
	var lk lookups
	for _, t := range texts {
		var found hit
		var ok bool
		var err error
		scanTokens(t, func(body string) bool {
			id, valid := r.codec.verifyToken(body)
			if !valid {
				ns.add("token [ref:%s] has a bad signature: ignored", clip(body, 60))
				return true
			}
			if !lk.allow(string(id)) {
				// A repeat of a case already looked up, or the bound is
				// reached: nothing new can be learned.
				return !lk.capped
			}
			var c mailcase.Case
			var exists bool
			c, exists, err = r.idx.GetCase(ctx, id)
			if err != nil {
				err = fmt.Errorf("threading: get case %q: %w", id, err)
				return false
			}
			if !exists {
				ns.add("token names case %q, which does not exist", clip(string(id), 80))
				return true
			}
			found, ok = hit{c: c, signal: signal, detail: "[ref:" + strings.ToLower(body) + "]", trusted: true}, true
			return false
		})
		if err != nil {
			return hit{}, false, "", err
		}
		if ok {
			return found, true, "", nil
		}
		if lk.capped {
			break
		}
	}
	if lk.capped {
		ns.add("tokens name more than %d cases; only %d looked up", maxMarkerLookups, maxMarkerLookups)
	}
	return hit{}, false, ns.String(), nil
}

// contextResolver finds a signed context ID (ctx:<number>.<mac>) in the
// body.
type contextResolver struct {
	codec *Codec
	idx   Index
}

func (r contextResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	var ns notes
	var lk lookups
	for _, t := range in.bodyTexts() {
		var found hit
		var ok bool
		var err error
		scanContextIDs(t, func(number, tag string) bool {
			if !r.codec.verifyContext(number, tag) {
				ns.add("context ID ctx:%s has a bad signature: ignored", clip(number, 40))
				return true
			}
			// The tag covers the number exactly as written, so the
			// number is looked up exactly as written.
			if !lk.allow(number) {
				return !lk.capped
			}
			var c mailcase.Case
			var exists bool
			c, exists, err = r.idx.FindCaseByNumber(ctx, number)
			if err != nil {
				err = fmt.Errorf("threading: find case %q: %w", number, err)
				return false
			}
			if !exists {
				ns.add("context ID names case number %q, which does not exist", number)
				return true
			}
			found, ok = hit{c: c, signal: SignalContextID, detail: "ctx:" + number, trusted: true}, true
			return false
		})
		if err != nil {
			return hit{}, false, "", err
		}
		if ok {
			return found, true, "", nil
		}
		if lk.capped {
			break
		}
	}
	if lk.capped {
		ns.add("context IDs name more than %d cases; only %d looked up", maxMarkerLookups, maxMarkerLookups)
	}
	return hit{}, false, ns.String(), nil
}

// subjectResolver finds a bare case number in the subject in one of the
// configured formats. A subject with several numbers threads on the first
// (leftmost) one that names an existing case; the others are named in the
// detail. Bare numbers are subject to the anti-hijack check.
// maxSubjectNumbers bounds the store lookups a hostile subject can cause.
const maxSubjectNumbers = 5

type subjectResolver struct {
	idx     Index
	formats []SubjectFormat
}

func (r subjectResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	d := in.d
	nums := FindSubjectNumbers(d.Message.Subject, r.formats)
	if len(nums) == 0 {
		return hit{}, false, "", nil
	}
	var notes []string
	if len(nums) > maxSubjectNumbers {
		notes = append(notes, fmt.Sprintf("%d case numbers in the subject; only the first %d looked up", len(nums), maxSubjectNumbers))
	}
	for i, n := range nums {
		if i >= maxSubjectNumbers {
			break
		}
		c, ok, err := findNumber(ctx, r.idx, n.Number)
		if err != nil {
			return hit{}, false, "", err
		}
		if !ok {
			notes = append(notes, fmt.Sprintf("subject number %s (%s) names no case", n.Number, n.Format))
			continue
		}
		detail := fmt.Sprintf("%s %s", n.Format, n.Number)
		if len(nums) > 1 {
			var others []string
			for j, o := range nums {
				if j != i {
					others = append(others, o.Number)
				}
			}
			detail += fmt.Sprintf(" (first of %d numbers; ignored %s)", len(nums), strings.Join(others, ", "))
		}
		return hit{c: c, signal: SignalSubjectNumber, detail: detail}, true, strings.Join(notes, "; "), nil
	}
	return hit{}, false, strings.Join(notes, "; "), nil
}

// findNumber looks a number up as written, then without leading zeros
// (CRM:0001234 names case 1234).
func findNumber(ctx context.Context, idx Index, number string) (mailcase.Case, bool, error) {
	c, ok, err := idx.FindCaseByNumber(ctx, number)
	if err != nil {
		return c, false, fmt.Errorf("threading: find case %q: %w", number, err)
	}
	if ok {
		return c, true, nil
	}
	if t := strings.TrimLeft(number, "0"); t != number && t != "" {
		c, ok, err = idx.FindCaseByNumber(ctx, t)
		if err != nil {
			return c, false, fmt.Errorf("threading: find case %q: %w", t, err)
		}
	}
	return c, ok, nil
}

// threadIndexResolver uses Microsoft's Thread-Index and Thread-Topic as a
// last hint. The candidate cases are the numbers in Thread-Topic and
// Subject. When the Thread-Index conversation GUID is the one we signed for
// a candidate (Codec.ThreadIndex), the mail continues our conversation and
// the hit is trusted; otherwise a number in Thread-Topic is an untrusted
// hint (anti-hijack applies).
type threadIndexResolver struct {
	codec   *Codec // nil without a key
	idx     Index
	formats []SubjectFormat
}

func (r threadIndexResolver) resolve(ctx context.Context, in *input) (hit, bool, string, error) {
	m := in.d.Message
	ti, ok := decodeThreadIndex(m.Header.Get("Thread-Index"))
	if !ok {
		return hit{}, false, "", nil
	}
	topic := m.Header.Get("Thread-Topic")
	topicNums := FindSubjectNumbers(topic, r.formats)
	cands := append(append([]SubjectNumber(nil), topicNums...), FindSubjectNumbers(m.Subject, r.formats)...)
	var topicHit *hit
	seen := map[string]bool{}
	for i, n := range cands {
		if seen[n.Number] || i >= 8 {
			continue
		}
		seen[n.Number] = true
		c, found, err := findNumber(ctx, r.idx, n.Number)
		if err != nil {
			return hit{}, false, "", err
		}
		if !found {
			continue
		}
		if r.codec != nil && constantEq(ti[6:22], r.codec.conversationGUID(c.ID)) {
			return hit{c: c, signal: SignalThreadIndex, detail: "conversation GUID signed for case " + c.Number, trusted: true}, true, "", nil
		}
		if i < len(topicNums) && topicHit == nil {
			topicHit = &hit{c: c, signal: SignalThreadIndex, detail: "Thread-Topic number " + n.Number + " (unsigned)"}
		}
	}
	if topicHit != nil {
		return *topicHit, true, "", nil
	}
	return hit{}, false, "", nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

package mailcase

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/internal/authres"
)

// SenderOptions configures a StoreSenderMatcher. A nil *SenderOptions is
// equivalent to a zero value.
type SenderOptions struct {
	// CacheTTL is how long a match is reused before the store is asked
	// again; 0 means no cache: every mail is looked up fresh.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached addresses; 0 means 10000.
	CacheSize int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (o SenderOptions) withDefaults() SenderOptions {
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// StoreSenderMatcher identifies senders from the records of a Store. It is the pipeline's default SenderMatcher. It is safe
// for concurrent use.
//
// The order of the checks:
//
//  1. An active employee with the full address wins (an employee's
//     mail is filed on the case, never handled as a customer's). The match
//     still carries the contact having the same address, if exactly one
//     does, so a pipeline that does not trust the employee identity (an
//     unauthenticated mail) can fall back to it. Inactive employees are not
//     trusted as employees: their address is matched as anyone else's.
//  2. Contacts with the full address: one gives SenderContact, two
//     or more SenderAmbiguous with every contact ID in Candidates.
//  3. Only when no contact has the address: accounts owning its domain; one
//     gives SenderAccount, several SenderAmbiguous.
//  4. Otherwise SenderUnknown.
//
// For an ambiguous match, Contact (or Account) holds the first candidate in
// store order, which the AmbiguousFirst policy files against; Kind stays
// SenderAmbiguous. A contact's account is not fetched: the match carries
// Contact.AccountID only.
type StoreSenderMatcher struct {
	s    *Store
	opts SenderOptions

	mu    sync.Mutex
	cache map[string]senderCacheEntry
}

type senderCacheEntry struct {
	m       SenderMatch
	expires time.Time
}

var _ SenderMatcher = (*StoreSenderMatcher)(nil)

// NewStoreSenderMatcher returns a matcher over s. A nil opts is equivalent
// to a zero value (no cache).
func NewStoreSenderMatcher(s *Store, opts *SenderOptions) *StoreSenderMatcher {
	var o SenderOptions
	if opts != nil {
		o = *opts
	}
	return &StoreSenderMatcher{s: s, opts: o.withDefaults(), cache: map[string]senderCacheEntry{}}
}

// MatchSender identifies from. An address that cannot be normalised is
// SenderUnknown, not an error; store failures are returned.
func (sm *StoreSenderMatcher) MatchSender(ctx context.Context, from Address) (SenderMatch, error) {
	addr := NormalizeAddress(from.Email)
	if addr == "" {
		return SenderMatch{Kind: SenderUnknown, Address: from.Email, Reason: "no usable sender address"}, nil
	}
	if m, ok := sm.cached(addr); ok {
		return m, nil
	}
	m, err := sm.lookup(ctx, addr)
	if err != nil {
		return SenderMatch{}, err
	}
	sm.store(addr, m)
	return m, nil
}

// ForgetSender drops the cached match of addr, so the next mail from it is
// looked up fresh. The pipeline calls it after creating a contact.
func (sm *StoreSenderMatcher) ForgetSender(addr string) {
	addr = NormalizeAddress(addr)
	sm.mu.Lock()
	delete(sm.cache, addr)
	sm.mu.Unlock()
}

func (sm *StoreSenderMatcher) cached(addr string) (SenderMatch, bool) {
	if sm.opts.CacheTTL <= 0 {
		return SenderMatch{}, false
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	e, ok := sm.cache[addr]
	if !ok {
		return SenderMatch{}, false
	}
	if !sm.opts.Now().Before(e.expires) {
		delete(sm.cache, addr)
		return SenderMatch{}, false
	}
	m := e.m
	m.Reason += " (cached)"
	return m, true
}

func (sm *StoreSenderMatcher) store(addr string, m SenderMatch) {
	if sm.opts.CacheTTL <= 0 {
		return
	}
	now := sm.opts.Now()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.cache) >= sm.opts.CacheSize {
		for k, e := range sm.cache { // drop expired entries first
			if !now.Before(e.expires) {
				delete(sm.cache, k)
			}
		}
		for k := range sm.cache { // then arbitrary ones, down to half
			if len(sm.cache) < sm.opts.CacheSize/2+1 {
				break
			}
			delete(sm.cache, k)
		}
	}
	sm.cache[addr] = senderCacheEntry{m: m, expires: now.Add(sm.opts.CacheTTL)}
}

func (sm *StoreSenderMatcher) lookup(ctx context.Context, addr string) (SenderMatch, error) {
	contacts, err := sm.s.FindContacts(ctx, addr)
	if err != nil {
		return SenderMatch{}, err
	}
	emp, isEmp, err := sm.s.FindEmployee(ctx, addr)
	if err != nil {
		return SenderMatch{}, err
	}
	m := SenderMatch{Address: addr}
	if isEmp && emp.Active {
		m.Kind = SenderEmployee
		m.Employee = &emp
		m.Reason = "active employee " + emp.ID
		switch len(contacts) {
		case 0:
		case 1:
			c := contacts[0]
			m.Contact = &c
			m.Reason += "; also contact " + c.ID
		default:
			m.Candidates = contactIDs(contacts)
			m.Reason += "; also " + strconv.Itoa(len(contacts)) + " contacts"
		}
		return m, nil
	}
	inactive := ""
	if isEmp {
		inactive = "; inactive employee " + emp.ID + " not trusted"
	}
	switch len(contacts) {
	case 0:
	case 1:
		c := contacts[0]
		m.Kind, m.Contact = SenderContact, &c
		m.Reason = "contact " + c.ID + " by full address" + inactive
		return m, nil
	default:
		c := contacts[0]
		m.Kind, m.Contact = SenderAmbiguous, &c
		m.Candidates = contactIDs(contacts)
		m.Reason = strconv.Itoa(len(contacts)) + " contacts share the address" + inactive
		return m, nil
	}
	domain := DomainOf(addr)
	accounts, err := sm.s.FindAccounts(ctx, domain)
	if err != nil {
		return SenderMatch{}, err
	}
	switch len(accounts) {
	case 0:
		m.Kind = SenderUnknown
		m.Reason = "no contact, employee or account for the address" + inactive
	case 1:
		a := accounts[0]
		m.Kind, m.Account = SenderAccount, &a
		m.Reason = "account " + a.ID + " by domain " + domain + inactive
	default:
		a := accounts[0]
		m.Kind, m.Account = SenderAmbiguous, &a
		for _, a := range accounts {
			m.Candidates = append(m.Candidates, a.ID)
		}
		m.Reason = strconv.Itoa(len(accounts)) + " accounts own domain " + domain + inactive
	}
	return m, nil
}

func contactIDs(cs []Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// authenticatedFrom reports whether m's From address is authenticated by
// the Authentication-Results field (RFC 8601) of a trusted server (trusted
// holds lower-case authserv-ids), and why: dkim, spf or dmarc passing for
// the domain of the From address (equal to it or a parent of it, DMARC
// relaxed alignment).
//
// Only one field is believed: the topmost field with a trusted authserv-id
// among those above the first Received field, that is the fields added by
// our own border MTA (an MTA prepends its fields, and Authentication-Results
// is written above the Received field of the receiving hop). Every field
// below the first Received field was in the mail before it reached us and
// can be forged by the sender, whatever its authserv-id, so it is ignored;
// a trusted field below the topmost one is ignored too. The header is
// read from m.Raw, in order (m.Header loses the order across field names),
// at most 256 KiB of it, in one linear pass.
//
// The border MTA must still remove incoming Authentication-Results fields
// carrying our authserv-id (RFC 8601 section 5), for mail that reaches us
// without a Received field above the forged one.
func authenticatedFrom(m *Message, trusted map[string]bool) (bool, string) {
	domain := DomainOf(m.From.Email)
	if domain == "" {
		return false, "no From domain"
	}
	if len(trusted) == 0 {
		return false, "no trusted authserv-id configured"
	}
	field, found, seen := topTrustedAuthResults(m.Raw, trusted)
	if !found {
		if seen {
			return false, "no Authentication-Results field from a trusted server above the first Received field"
		}
		return false, "no Authentication-Results field"
	}
	id, results := authres.Parse(field)
	for _, r := range results {
		if r.Result != "pass" {
			continue
		}
		var d string
		switch r.Method {
		case "dkim":
			d = r.Props["header.d"]
			if d == "" {
				d = r.Props["header.i"]
			}
		case "spf":
			d = r.Props["smtp.mailfrom"]
		case "dmarc":
			d = r.Props["header.from"]
		default:
			continue
		}
		if at := strings.LastIndexByte(d, '@'); at >= 0 {
			d = d[at+1:]
		}
		d = NormalizeDomain(d)
		if d != "" && (domain == d || strings.HasSuffix(domain, "."+d)) {
			return true, r.Method + "=pass for " + d + " by " + id
		}
	}
	return false, "no dkim, spf or dmarc pass for " + domain + " in the topmost Authentication-Results field of a trusted server"
}

// topTrustedAuthResults returns the value of the topmost
// Authentication-Results field of raw's header written by a trusted
// authserv-id, looking only above the first Received field. seen reports
// whether raw has an Authentication-Results field at all.
func topTrustedAuthResults(raw []byte, trusted map[string]bool) (field string, found, seen bool) {
	stop := false
	scanHeader(raw[:min(len(raw), maxHeaderScan)], func(name, value []byte) {
		if stop {
			seen = seen || bytes.EqualFold(name, []byte("Authentication-Results"))
			return
		}
		switch {
		case bytes.EqualFold(name, []byte("Received")):
			stop = true
		case bytes.EqualFold(name, []byte("Authentication-Results")):
			seen = true
			v := string(value)
			if id, _ := authres.Parse(v); trusted[id] {
				field, found, stop = v, true, true
			}
		}
	})
	return field, found, seen
}

// AuthenticatedSender reports whether m's From domain is authenticated
// (dkim, spf or dmarc pass, aligned with the From domain) by the topmost
// Authentication-Results field of one of our receiving servers, named by
// their authserv-ids, and why. It applies the same rule the pipeline uses
// for employee identity, for other consumers such as structured mail.
func AuthenticatedSender(m *Message, trustedAuthServIDs []string) (bool, string) {
	trusted := make(map[string]bool, len(trustedAuthServIDs))
	for _, id := range trustedAuthServIDs {
		if id = strings.ToLower(strings.TrimSpace(id)); id != "" {
			trusted[id] = true
		}
	}
	return authenticatedFrom(m, trusted)
}

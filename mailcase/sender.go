package mailcase

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
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

// AuthenticatedSender reports whether m's From domain is authenticated
// (dkim, spf or dmarc pass, aligned with the From domain) by the topmost
// Authentication-Results field of one of our receiving servers, named by
// their authserv-ids, and why. It is the default Options.SenderAuth without
// DKIM (see package mailauth), for consumers that have only a parsed
// message; a pipeline computes the result once per mail
// (Delivery.Auth), which structured handlers should read instead.
func AuthenticatedSender(m *Message, trustedAuthServIDs []string) (bool, string) {
	c, err := mailauth.New(&mailauth.Options{TrustedAuthServIDs: trustedAuthServIDs})
	if err != nil {
		return false, err.Error()
	}
	r, _ := c.VerifySender(context.Background(), m.Raw)
	if r.Pass && r.FromDomain != DomainOf(m.From.Email) {
		return false, "authenticated From domain is not the From domain of the parsed mail"
	}
	return r.Pass, r.Reason
}

package mailcase

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
)

// StoreURLOpener opens a Store from a URL. Drivers export a URLOpener type
// implementing it.
type StoreURLOpener interface {
	OpenStoreURL(ctx context.Context, u *url.URL) (*Store, error)
}

// URLMux maps URL schemes to StoreURLOpeners. It is safe for concurrent use.
type URLMux struct {
	mu      sync.RWMutex
	openers map[string]StoreURLOpener
}

// RegisterStore registers opener for scheme. It panics if scheme is already
// registered or opener is nil (a programming error at setup).
func (m *URLMux) RegisterStore(scheme string, opener StoreURLOpener) {
	if opener == nil {
		panic("mailcase: RegisterStore with nil opener for scheme " + scheme)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.openers == nil {
		m.openers = map[string]StoreURLOpener{}
	}
	if _, dup := m.openers[scheme]; dup {
		panic("mailcase: store scheme " + scheme + " registered twice")
	}
	m.openers[scheme] = opener
}

// Schemes returns the registered schemes, sorted.
func (m *URLMux) Schemes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.openers))
	for s := range m.openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// OpenStore opens the store named by urlstr.
func (m *URLMux) OpenStore(ctx context.Context, urlstr string) (*Store, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Op: "OpenStore", Err: fmt.Errorf("invalid store URL: %w", err)}
	}
	return m.OpenStoreURL(ctx, u)
}

// OpenStoreURL opens the store named by u.
func (m *URLMux) OpenStoreURL(ctx context.Context, u *url.URL) (*Store, error) {
	if u == nil {
		return nil, &Error{Code: InvalidArgument, Op: "OpenStore", Err: fmt.Errorf("nil store URL")}
	}
	m.mu.RLock()
	o, ok := m.openers[u.Scheme]
	m.mu.RUnlock()
	if !ok {
		return nil, &Error{Code: InvalidArgument, Op: "OpenStore",
			Err: fmt.Errorf("no store registered for scheme %q (registered: %s; forgotten import?)",
				u.Scheme, strings.Join(m.Schemes(), ", "))}
	}
	return o.OpenStoreURL(ctx, u)
}

// defaultMux is the only package-level state: the optional URL-scheme
// registry that driver packages fill from init (as database/sql does).
var defaultMux = new(URLMux)

// DefaultURLMux returns the URLMux used by OpenStore. Driver packages that
// can open without secrets in the URL register themselves in it.
func DefaultURLMux() *URLMux { return defaultMux }

// OpenStore opens a store from a URL with the default mux, for example
// "mem://" after importing mailcase/memstore.
func OpenStore(ctx context.Context, urlstr string) (*Store, error) {
	return defaultMux.OpenStore(ctx, urlstr)
}

// CheckQuery returns an InvalidArgument error if u has a query parameter
// not in allowed (drivers reject unknown parameters). With several unknown
// parameters it names the first in sorted order.
func CheckQuery(u *url.URL, allowed ...string) error {
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return &Error{Code: InvalidArgument, Op: "OpenStore",
				Err: fmt.Errorf("unknown query parameter %q in %s URL", k, u.Scheme)}
		}
	}
	return nil
}

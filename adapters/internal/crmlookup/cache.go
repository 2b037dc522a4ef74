package crmlookup

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Cache keeps lookup answers for a freshness window. The zero TTL caches
// nothing (a fresh lookup on each call). A Cache is safe for concurrent
// use; its zero value is ready (TTL 0).
type Cache struct {
	// TTL is how long an answer is reused.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	val any
	at  time.Time
}

// NewCache returns a cache with freshness window ttl.
func NewCache(ttl time.Duration, now func() time.Time) *Cache {
	return &Cache{TTL: ttl, Now: now}
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the cached answer for key while it is fresh, else calls f and
// caches its answer. Answers are cloned on the way in and out so callers
// never alias the cache. A done ctx is an error before anything else.
func Get[T any](c *Cache, ctx context.Context, key string, f func() ([]T, error)) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.TTL > 0 {
		c.mu.Lock()
		e, ok := c.m[key]
		c.mu.Unlock()
		if ok && c.now().Sub(e.at) < c.TTL {
			return Clone(e.val.([]T)), nil
		}
	}
	v, err := f()
	if err != nil {
		return nil, err
	}
	if c.TTL > 0 {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]entry{}
		}
		c.m[key] = entry{val: Clone(v), at: c.now()}
		c.mu.Unlock()
	}
	return v, nil
}

// Forget drops a cached answer (after a write that changes it).
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// Clone copies a slice of Directory records or lookup rows, deep enough
// that callers never alias the cache.
func Clone[T any](v []T) []T {
	out := slices.Clone(v)
	switch xs := any(out).(type) {
	case []driver.Account:
		for i := range xs {
			xs[i].Domains = slices.Clone(xs[i].Domains)
		}
	case []map[string]any:
		for i := range xs {
			xs[i] = maps.Clone(xs[i])
		}
	}
	return out
}

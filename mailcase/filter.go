package mailcase

import (
	"context"
	"fmt"
	"strings"
)

// BlockList is the exception filter of a mailbox's block lists: it
// drops mail whose From or Sender address is listed, or whose domain is a
// listed domain or a subdomain of one. Addresses and domains compare in
// their normalised form (NormalizeAddress, NormalizeDomain), so case and
// IDN spelling do not matter. A BlockList is immutable and safe for
// concurrent use.
type BlockList struct {
	addrs   map[string]bool
	domains map[string]bool
}

var _ Filter = (*BlockList)(nil)

// NewBlockList returns a BlockList. An entry that is not a usable address
// or domain is an InvalidArgument error, so a typo in the configuration
// fails at startup rather than letting mail through.
func NewBlockList(addresses, domains []string) (*BlockList, error) {
	b := &BlockList{addrs: map[string]bool{}, domains: map[string]bool{}}
	for _, a := range addresses {
		n := NormalizeAddress(a)
		if n == "" {
			return nil, &Error{Code: InvalidArgument, Op: "NewBlockList", Err: fmt.Errorf("invalid blocked address %q", a)}
		}
		b.addrs[n] = true
	}
	for _, d := range domains {
		n := NormalizeDomain(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if n == "" {
			return nil, &Error{Code: InvalidArgument, Op: "NewBlockList", Err: fmt.Errorf("invalid blocked domain %q", d)}
		}
		b.domains[n] = true
	}
	return b, nil
}

// Empty reports whether the list blocks nothing.
func (b *BlockList) Empty() bool { return len(b.addrs) == 0 && len(b.domains) == 0 }

// FilterMail implements Filter.
func (b *BlockList) FilterMail(_ context.Context, d *Delivery) (FilterVerdict, error) {
	if d == nil || d.Message == nil {
		return FilterVerdict{}, nil
	}
	for _, a := range [...]string{d.Message.From.Email, d.Message.Sender.Email} {
		if v, ok := b.check(a); ok {
			return v, nil
		}
	}
	return FilterVerdict{}, nil
}

// check returns the verdict for one address.
func (b *BlockList) check(addr string) (FilterVerdict, bool) {
	a := NormalizeAddress(addr)
	if a == "" {
		return FilterVerdict{}, false
	}
	if b.addrs[a] {
		return FilterVerdict{Drop: true, Rule: "block-address", Reason: "sender " + a + " is on the block list"}, true
	}
	d := a[strings.LastIndexByte(a, '@')+1:]
	for cur := d; cur != ""; {
		if b.domains[cur] {
			r := "sender domain " + d + " is on the block list"
			if cur != d {
				r = "sender domain " + d + " is a subdomain of blocked " + cur
			}
			return FilterVerdict{Drop: true, Rule: "block-domain", Reason: r}, true
		}
		i := strings.IndexByte(cur, '.')
		if i < 0 {
			break
		}
		cur = cur[i+1:]
	}
	return FilterVerdict{}, false
}

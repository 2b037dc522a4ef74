package mailauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/emailcrm/emailcrm/internal/authres"
)

// Method is how a sender was authenticated (or tried to be). It crosses
// the wire (explain JSON), so it is a string.
type Method string

// Methods.
const (
	// MethodDKIM: a DKIM signature verified in process.
	MethodDKIM Method = "dkim"
	// MethodAuthResults: the Authentication-Results field of a trusted
	// receiving server.
	MethodAuthResults Method = "authentication-results"
	// MethodSharedSecret: a structured request carrying the shared secret
	// (decided by package xmlapi, not by a Verifier).
	MethodSharedSecret Method = "shared-secret"
	// MethodCallback: a caller-supplied function decided
	// (mailcase.Options.Authenticated).
	MethodCallback Method = "callback"
	// MethodNone: no method had anything to go on.
	MethodNone Method = "none"
)

// Result is the authentication of one mail's sender.
type Result struct {
	Method Method `json:"method"`
	// Pass reports whether the From domain is authenticated.
	Pass bool `json:"pass"`
	// Domain is the authenticated (or failing) domain: the signing domain
	// (d=) for DKIM, the domain reported by the trusted server for
	// Authentication-Results; "" when none.
	Domain string `json:"domain,omitempty"`
	// Selector is the DKIM selector (s=) of the signature; "" otherwise.
	Selector string `json:"selector,omitempty"`
	// FromDomain is the domain of the From address that was checked,
	// lower-case ASCII; "" when the mail has no usable From.
	FromDomain string `json:"from_domain,omitempty"`
	// Reason says why, for the mail's outcome; it never holds key
	// material or secrets.
	Reason string `json:"reason"`
}

// A Verifier authenticates the sender of a raw mail. The error is non-nil
// only when ctx is done: every property of the mail (no signature, a bad
// key, a DNS failure) is a failing Result. Implementations must be safe for
// concurrent use.
type Verifier interface {
	VerifySender(ctx context.Context, raw []byte) (Result, error)
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(ctx context.Context, raw []byte) (Result, error)

// VerifySender calls f(ctx, raw).
func (f VerifierFunc) VerifySender(ctx context.Context, raw []byte) (Result, error) {
	return f(ctx, raw)
}

// A TXTResolver looks up the TXT records of a DNS name. *net.Resolver
// satisfies it. A name without records must give an error (for
// *net.Resolver, a *net.DNSError with IsNotFound).
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Alignment is the DMARC identifier alignment mode.
type Alignment string

// Alignment modes.
const (
	AlignRelaxed Alignment = "relaxed" // same organisational domain
	AlignStrict  Alignment = "strict"  // same domain
)

// Options configures a Checker. A nil *Options is equivalent to a zero
// value: no DKIM verification and no trusted server, so nothing passes.
type Options struct {
	// DKIM turns on in-process verification of DKIM signatures.
	DKIM bool
	// Resolver looks up DKIM keys; nil means net.DefaultResolver.
	Resolver TXTResolver
	// Timeout bounds all DNS lookups of one mail together; 0 means 5s.
	Timeout time.Duration
	// MaxSignatures bounds the signatures verified per mail (and so the
	// DNS lookups); 0 means 5.
	MaxSignatures int
	// Alignment is the alignment mode with the From domain of the signing
	// domain and of the domain a trusted Authentication-Results field
	// reports; "" means AlignRelaxed.
	Alignment Alignment
	// TrustedAuthServIDs lists the authserv-ids of our own receiving
	// servers, whose Authentication-Results fields are believed (see the
	// package documentation); empty means none.
	TrustedAuthServIDs []string
}

// Checker is the package's Verifier. It is safe for concurrent use.
type Checker struct {
	dkim     bool
	resolver TXTResolver
	timeout  time.Duration
	maxSigs  int
	align    Alignment
	trusted  map[string]bool
}

var _ Verifier = (*Checker)(nil)

// ErrOptions is returned by New for an invalid Options value.
var ErrOptions = errors.New("mailauth: invalid options")

// New returns a Checker. It fails on an unknown alignment mode, a negative
// timeout or signature bound, and an authserv-id with spaces or control
// characters. opts is copied.
func New(opts *Options) (*Checker, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Checker{dkim: o.DKIM, resolver: o.Resolver, timeout: o.Timeout, maxSigs: o.MaxSignatures,
		align: o.Alignment, trusted: map[string]bool{}}
	switch c.align {
	case "":
		c.align = AlignRelaxed
	case AlignRelaxed, AlignStrict:
	default:
		return nil, fmt.Errorf("%w: alignment %q (want %q or %q)", ErrOptions, o.Alignment, AlignRelaxed, AlignStrict)
	}
	if c.timeout < 0 || c.maxSigs < 0 {
		return nil, fmt.Errorf("%w: negative timeout or signature bound", ErrOptions)
	}
	if c.timeout == 0 {
		c.timeout = 5 * time.Second
	}
	if c.maxSigs == 0 {
		c.maxSigs = 5
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	for _, id := range o.TrustedAuthServIDs {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ';' }) {
			return nil, fmt.Errorf("%w: authserv-id %q", ErrOptions, id)
		}
		c.trusted[id] = true
	}
	return c, nil
}

// maxHeaderScan bounds the header bytes read for From and
// Authentication-Results.
const maxHeaderScan = 256 << 10

// VerifySender authenticates raw's From domain; see the package
// documentation for the rules.
func (c *Checker) VerifySender(ctx context.Context, raw []byte) (Result, error) {
	h := scan(raw, c.trusted)
	from, why := h.fromDomain()
	if from == "" {
		return Result{Method: MethodNone, Reason: why}, ctx.Err()
	}
	var reasons []string
	res := Result{Method: MethodNone, FromDomain: from}
	if c.dkim {
		if len(h.sigs) == 0 {
			reasons = append(reasons, "dkim: no signature")
		} else {
			r, err := c.verifyDKIM(ctx, raw, h, from)
			if err != nil {
				return r, err
			}
			if r.Pass {
				return r, nil
			}
			res = r
			reasons = append(reasons, r.Reason)
		}
	}
	if len(c.trusted) > 0 {
		r := c.authResults(h, from)
		if r.Pass {
			return r, nil
		}
		if r.Method == MethodAuthResults && res.Method == MethodNone {
			res = r
		}
		reasons = append(reasons, r.Reason)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no authentication method configured")
	}
	res.Pass = false
	res.Reason = strings.Join(reasons, "; ")
	return res, ctx.Err()
}

// verifyDKIM verifies the signatures of raw and returns the first aligned
// pass, or a failing result naming every signature's problem.
func (c *Checker) verifyDKIM(ctx context.Context, raw []byte, h header, from string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var lookups atomic.Int32
	opts := &dkim.VerifyOptions{
		MaxVerifications: c.maxSigs,
		LookupTXT: func(name string) ([]string, error) {
			if lookups.Add(1) > int32(c.maxSigs) {
				return nil, errors.New("too many DNS lookups")
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return c.resolver.LookupTXT(ctx, name)
		},
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
	var notes []string
	switch {
	case errors.Is(err, dkim.ErrTooManySignatures):
		notes = append(notes, fmt.Sprintf("only the first %d signatures checked", c.maxSigs))
	case err != nil:
		return Result{Method: MethodDKIM, FromDomain: from, Reason: "dkim: unreadable mail: " + err.Error()}, nil
	}
	var first *Result
	for i, v := range verifs {
		sel := ""
		if i < len(h.sigs) && strings.EqualFold(h.sigs[i].domain, v.Domain) {
			sel = h.sigs[i].selector
		}
		d := strings.ToLower(strings.TrimSuffix(v.Domain, "."))
		r := Result{Method: MethodDKIM, Domain: d, Selector: sel, FromDomain: from}
		switch {
		case v.Err != nil:
			r.Reason = "signature d=" + d + " s=" + sel + " fails: " + errText(v.Err)
		case !c.aligned(d, from):
			r.Reason = "signature d=" + d + " s=" + sel + " verifies but is not aligned (" + string(c.align) + ") with From domain " + from
		default:
			r.Pass = true
			r.Reason = "signature d=" + d + " s=" + sel + " verifies, aligned (" + string(c.align) + ") with From domain " + from
			if len(notes) > 0 {
				r.Reason += " (" + strings.Join(notes, "; ") + ")"
			}
			return r, nil
		}
		notes = append(notes, r.Reason)
		if first == nil {
			first = &r
		}
	}
	if err := ctx.Err(); err != nil && first == nil {
		return Result{Method: MethodDKIM, FromDomain: from, Reason: "dkim: " + err.Error()}, nil
	}
	out := Result{Method: MethodDKIM, FromDomain: from}
	if first != nil {
		out.Domain, out.Selector = first.Domain, first.Selector
	}
	if len(notes) == 0 {
		notes = append(notes, "no signature verified")
	}
	out.Reason = "dkim: " + strings.Join(notes, "; ")
	return out, nil
}

// errText is a verification error as operator text. Timeouts of our own
// deadline read as such rather than as "context deadline exceeded".
func errText(err error) string {
	s := err.Error()
	// go-msgauth keeps only the text of lookup errors.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, context.DeadlineExceeded.Error()) {
		return "DNS timeout"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// aligned reports whether the authenticated domain d is aligned with the
// From domain under the checker's mode.
func (c *Checker) aligned(d, from string) bool {
	return Aligned(d, from, c.align)
}

// Aligned reports whether domain d is aligned with the From domain from
// under mode (AlignStrict: equal; otherwise: the same organisational
// domain). Both are compared case-insensitively, without a trailing dot.
func Aligned(d, from string, mode Alignment) bool {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	from = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(from), "."))
	if d == "" || from == "" {
		return false
	}
	if mode == AlignStrict {
		return d == from
	}
	od, err1 := publicsuffix.EffectiveTLDPlusOne(d)
	of, err2 := publicsuffix.EffectiveTLDPlusOne(from)
	return err1 == nil && err2 == nil && od == of
}

// authResults reads the topmost trusted Authentication-Results field.
func (c *Checker) authResults(h header, from string) Result {
	if !h.arFound {
		r := Result{Method: MethodNone, FromDomain: from}
		if h.arSeen {
			r.Reason = "authentication-results: no field from a trusted server above the first Received field"
		} else {
			r.Reason = "authentication-results: no field"
		}
		return r
	}
	id, results := authres.Parse(h.ar)
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
		d = asciiDomain(d)
		if d != "" && c.aligned(d, from) {
			return Result{Method: MethodAuthResults, Pass: true, Domain: d, FromDomain: from,
				Reason: r.Method + "=pass for " + d + " by " + id + ", aligned (" + string(c.align) + ") with From domain " + from}
		}
	}
	return Result{Method: MethodAuthResults, FromDomain: from,
		Reason: "authentication-results: no dkim, spf or dmarc pass aligned with " + from + " in the topmost field of trusted server " + id}
}

// header is what VerifySender reads of a mail's header.
type header struct {
	froms   []string
	sigs    []sigInfo
	ar      string // topmost trusted Authentication-Results above the first Received
	arFound bool
	arSeen  bool
}

type sigInfo struct{ domain, selector string }

// scan reads the header of raw (at most maxHeaderScan bytes) in one
// linear pass; trusted holds the lower-case trusted authserv-ids.
func scan(raw []byte, trusted map[string]bool) header {
	var h header
	stop := false // seen the first Received field or the trusted field
	b := raw[:min(len(raw), maxHeaderScan)]
	var name, val []byte
	flush := func() {
		if len(name) == 0 {
			return
		}
		v := string(bytes.TrimSpace(val))
		switch {
		case bytes.EqualFold(name, []byte("From")):
			h.froms = append(h.froms, v)
		case bytes.EqualFold(name, []byte("DKIM-Signature")):
			h.sigs = append(h.sigs, parseSig(v))
		case bytes.EqualFold(name, []byte("Received")):
			stop = true
		case bytes.EqualFold(name, []byte("Authentication-Results")):
			h.arSeen = true
			if !stop {
				if id, _ := authres.Parse(v); trusted[id] {
					h.ar, h.arFound, stop = v, true, true
				}
			}
		}
	}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(name) > 0 {
				val = append(val, ' ')
				val = append(val, bytes.TrimSpace(line)...)
			}
			continue
		}
		flush()
		name, val = nil, val[:0]
		if c := bytes.IndexByte(line, ':'); c > 0 {
			name = bytes.TrimSpace(line[:c])
			val = append(val, line[c+1:]...)
		}
	}
	flush()
	return h
}

// parseSig reads d= and s= of a DKIM-Signature value.
func parseSig(v string) sigInfo {
	var s sigInfo
	for _, tag := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(tag, "=")
		if !ok {
			continue
		}
		val = strings.Join(strings.Fields(val), "")
		switch strings.TrimSpace(k) {
		case "d":
			s.domain = val
		case "s":
			s.selector = val
		}
	}
	return s
}

// fromDomain returns the domain of the single From address, or "" and why.
func (h header) fromDomain() (string, string) {
	switch len(h.froms) {
	case 0:
		return "", "no From field"
	case 1:
	default:
		return "", fmt.Sprintf("%d From fields: which author a reader sees is undefined", len(h.froms))
	}
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: rawCharset}}
	list, err := p.ParseList(h.froms[0])
	var addr string
	switch {
	case err == nil && len(list) == 1:
		addr = list[0].Address
	case err == nil:
		return "", fmt.Sprintf("the From field holds %d addresses", len(list))
	default:
		// QUIRK: tolerate a display name net/mail refuses; only the
		// bracketed address counts, and there must be exactly one.
		v := h.froms[0]
		i, j := strings.LastIndexByte(v, '<'), strings.LastIndexByte(v, '>')
		if i < 0 || j < i || strings.Count(v, "<") != 1 || strings.Count(v, "@") != 1 {
			return "", "unreadable From field"
		}
		addr = strings.TrimSpace(v[i+1 : j])
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "From address without a domain"
	}
	d := asciiDomain(addr[at+1:])
	if d == "" {
		return "", "invalid From domain"
	}
	return d, ""
}

// rawCharset lets encoded words in unknown charsets through undecoded: only
// the address matters here.
func rawCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// asciiDomain returns d lower-case in ASCII (punycode), or "" when it is
// not a valid domain name.
func asciiDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	d = strings.TrimSuffix(strings.TrimPrefix(d, "["), "]")
	if d == "" || strings.ContainsAny(d, " \t\r\n<>@;") {
		return ""
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return ""
	}
	return strings.ToLower(a)
}

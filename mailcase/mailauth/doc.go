// Package mailauth authenticates the sender of an inbound mail: it verifies
// DKIM signatures (RFC 6376) over the raw mail in process, checks that the
// signing domain is aligned with the domain of the From address the way
// DMARC does (RFC 7489 section 3.1.1), and reads the Authentication-Results
// field (RFC 8601) written by one of our own receiving servers. The outcome
// is one Result: method, domain, selector, pass or fail, and the reason.
//
// The package is pure: it imports nothing else from this module but the
// internal Authentication-Results parser, and its only I/O is the DNS TXT
// lookup of DKIM keys through a TXTResolver (*net.Resolver satisfies it;
// tests serve keys from a map).
//
// # Which mail passes
//
// A mail passes when, in this order:
//
//  1. DKIM (Options.DKIM): a DKIM-Signature verifies over the raw bytes and
//     its signing domain (d=) is aligned with the From domain. The first
//     such signature, in header order, is the result (MethodDKIM).
//  2. Authentication-Results (Options.TrustedAuthServIDs): the topmost
//     field written by a trusted authserv-id above the first Received
//     field reports dkim, spf or dmarc "pass" for a domain aligned with the
//     From domain (MethodAuthResults).
//
// When the two disagree, a pass wins: a valid aligned signature is proof
// by itself, whatever our border server concluded (a DNS failure there is
// not a forgery), and a trusted server's pass stands when the in-process
// check fails, because a mail may legitimately change after our border
// verified it (a content filter adding a footer, a re-encoding) and only
// our own servers can write that field. A mail neither method passes is not
// authenticated; Result.Reason then lists why each method failed, and
// Method says which method was tried last with evidence (MethodDKIM when
// the mail carried a signature, MethodAuthResults when a trusted field was
// found, MethodNone otherwise).
//
// The mail must have exactly one From field holding exactly one address
// (RFC 7489 section 6.6.1); otherwise nothing passes, since which of
// several authors a reader sees is up to the reader's software.
//
// # Alignment
//
// Relaxed alignment (the default) accepts a signing domain whose
// organisational domain equals the From domain's: d=mail.example.com
// authenticates From: ann@example.com and From: ann@eu.example.com. The
// organisational domain is the public suffix plus one label, from the
// Public Suffix List compiled into golang.org/x/net/publicsuffix (its ICANN
// and private sections, so user.github.io and other.github.io are
// different organisations). A domain that is itself a public suffix is
// never aligned. Strict alignment requires the two domains to be equal.
// The mode applies to both methods.
//
// # Limits
//
// At most Options.MaxSignatures signatures are verified per mail (the rest
// are ignored and noted in the reason), at most as many DNS lookups are
// made, and all of them share one Options.Timeout. Signatures with a body
// length tag (l=), rsa-sha1 signatures (RFC 8301) and expired signatures
// fail. Only the first 256 KiB of the header are read for the From and
// Authentication-Results fields. A DNS failure, timeout or malformed key
// is a failing signature, never an error: one bad mail never blocks
// others.
//
// The shared-secret method (MethodSharedSecret) is not decided here: the
// structured-mail handler (package xmlapi) reports it for a request that
// carries the configured secret.
package mailauth

// Package smtpsender delivers already-composed mail (replies, notifications)
// to an SMTP submission server with github.com/emersion/go-smtp's client.
//
// # Connection
//
// Implicit TLS (port 465, the default) or mandatory STARTTLS (port 587);
// Insecure is refused except on loopback. A test CA is trusted with
// Options.TLSConfig. Login authenticates with AUTH PLAIN (LOGIN when the
// server offers only LOGIN) or XOAUTH2 with a token from an
// oauth2.TokenSource. New only validates; the first Send connects.
//
// One connection is kept open and reused by later Sends (see Sender): at
// most Options.MaxPerConnection messages, closed after Options.IdleTimeout
// unused, checked with NOOP when idle for more than a second, and
// redialled once when MAIL finds it broken.
//
// # Errors
//
// Send returns a *SendError (see there): Permanent for 5xx replies and
// configuration errors, temporary for 4xx, network failures, timeouts and
// cancellation; Delivered and Rejected report a delivery to only some
// recipients. Errors start with "smtpsender: " and name the server; they
// carry the server's reply text, trimmed to 200 bytes, and never a password
// or token. Logs are at Debug only.
//
// # Tests
//
// Package smtptest runs a go-smtp server on loopback that records what it
// receives and fails on request.
package smtpsender

// Package pop3source reads support mail from a POP3 maildrop (M-1.2) as a
// mailcase.Source, with its own POP3 client (no well-kept Go POP3 library
// exists).
//
// The Client implements RFC 1939 (USER/PASS, STAT, LIST, UIDL, TOP, RETR
// with dot-unstuffing, DELE, RSET, NOOP, QUIT), RFC 2449 CAPA and RFC 2595
// STLS, with limits on line length and message size, a timeout per command
// and cancellation by context. A session that saw an I/O error, a protocol
// violation or an oversized message is marked broken (Client.Broken) and
// refuses further commands.
//
// The Source is UIDL based: a seen-set of unique-ids (persisted in the
// store's source state) remembers filed mail whose deletion is not
// committed yet and mail kept on the server; DELE is sent only after
// Ack(Done) and committed by QUIT at the end of the session.
package pop3source

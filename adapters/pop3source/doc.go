// Package pop3source reads support mail from a POP3 maildrop as a
// mailcase.Source, with its own POP3 client (no well-kept Go POP3 library
// exists).
//
// The Client implements RFC 1939 (USER/PASS, STAT, LIST, UIDL, TOP, RETR
// with dot-unstuffing, DELE, RSET, NOOP, QUIT), RFC 2449 CAPA and RFC 2595
// STLS, with a limit on status and listing lines, a size limit on message
// data (whose lines may be of any length), a timeout per command and
// cancellation by context. A message over its limit is returned cut, with
// ErrMessageTooLarge, its rest read and discarded so that the session goes
// on. A session that saw an I/O error, a protocol violation or a message
// far over its limit is marked broken (Client.Broken) and refuses further
// commands.
//
// The Source is UIDL based: a seen-set of unique-ids (persisted in the
// store's source state) remembers filed mail whose deletion is not
// committed yet and mail kept on the server; DELE is sent only after
// Ack(Done) and committed by QUIT at the end of the session. Ack never
// waits for a download in progress: its DELE is queued and sent with a
// deadline of its own once the connection is free. Mail larger than
// announced, or with a header over 4 MiB, is handed out Truncated (its
// header, or the header's first 4 MiB) and kept on the server.
package pop3source

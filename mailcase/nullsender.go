package mailcase

import "strings"

// IsNullSender reports whether v, a Return-Path field value or an envelope
// sender handed to a delivery command (sendmail's -f, the SENDER
// environment variable), stands for the null reverse-path of bounces and
// automatic replies. Mail transfer agents write it differently:
//
//   - "<>": Exim ("Return-path: <>"), qmail-local, Sendmail, the LMTP
//     listener, and Postfix's pipe with null_sender= set empty; also with
//     white space inside ("< >") or doubled ("<<>>", a "-f <>" put in
//     brackets again), and an empty value;
//   - "MAILER-DAEMON" with or without brackets, in any case: Postfix's pipe
//     with flags=R or F and the default null_sender, the ${sender} macro,
//     and Sendmail configurations that name the null sender so; also
//     "MAILER-DAEMON@host" where Sendmail qualifies that name;
//   - "#@[]": qmail's envelope sender of double bounces (SENDER, and
//     qmail-local's "Return-Path: <#@[]>").
//
// A trailing comment ("<> (bounce)") is ignored.
func IsNullSender(v string) bool {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '('); i >= 0 && strings.HasSuffix(v, ")") {
		v = strings.TrimSpace(v[:i])
	}
	v = strings.Map(func(r rune) rune {
		switch r {
		case '<', '>', ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, v)
	if v == "" || v == "#@[]" {
		return true
	}
	local, _, _ := strings.Cut(v, "@")
	return strings.EqualFold(local, "mailer-daemon")
}

// hasNullReturnPath reports whether m has a Return-Path field whose value is
// the null sender (IsNullSender).
func hasNullReturnPath(m *Message) bool {
	if !m.HasReturnPath {
		return false
	}
	vs, ok := m.Header[textprotoKey("Return-Path")]
	return ok && len(vs) > 0 && IsNullSender(vs[0])
}

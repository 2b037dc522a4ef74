package cli

import (
	"bytes"
	"os"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// envelopeSender is the envelope sender handed to the pipe command: the -f
// flag (sendmail's convention; Postfix's ${sender} gives MAILER-DAEMON for
// the null sender), else the SENDER environment variable that qmail-local,
// Exim's pipe transport and Postfix's local(8) set for a command (empty for
// the null sender). ok is false when neither is given.
func envelopeSender(flagValue string, flagSet bool) (string, bool) {
	if flagSet {
		return flagValue, true
	}
	return os.LookupEnv("SENDER")
}

// withEnvelopeSender adds the envelope sender to raw as its Return-Path, as
// a delivery agent does, unless the mail already carries one at the top
// (Postfix's flags=R, Exim's return_path_add). The null sender in any of
// the forms MTAs write it (mailcase.IsNullSender) becomes "<>". An mbox
// "From " line (Postfix's flags=F) stays first.
func withEnvelopeSender(raw []byte, sender string) []byte {
	from, rest := []byte(nil), raw
	if bytes.HasPrefix(rest, []byte("From ")) {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			from, rest = rest[:i+1], rest[i+1:]
		}
	}
	if len(rest) >= 12 && strings.EqualFold(string(rest[:12]), "Return-Path:") {
		return raw
	}
	if i := strings.IndexAny(sender, "\r\n"); i >= 0 {
		sender = sender[:i] // one line: no field can be smuggled in
	}
	if mailcase.IsNullSender(sender) {
		sender = ""
	}
	sender = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '<' || r == '>' {
			return -1
		}
		return r
	}, sender)
	eol := "\n"
	if i := bytes.IndexByte(rest, '\n'); i > 0 && rest[i-1] == '\r' {
		eol = "\r\n"
	}
	out := make([]byte, 0, len(raw)+len(sender)+18)
	out = append(out, from...)
	out = append(out, "Return-Path: <"+sender+">"+eol...)
	return append(out, rest...)
}

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounces and auto-replies reaching the pipe with the null sender as each
// MTA hands it over (a Return-Path line, the -f argument, the SENDER
// environment variable) are recorded, never opened as cases; run on the
// built binary with the README's Postfix recipe (flags=Rq: a Return-Path
// line, LF line endings).
func TestPipeNullSender(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := writeFile(t, dir, "mailcase.yaml", fmt.Sprintf("store: sqlite://%s\nmailboxes:\n  - name: support\n    address: support@example.com\n", db))
	vacation := func(id string) string {
		return "From: Jane Doe <jane@customer.example>\nTo: support@example.com\nSubject: Away until Monday\n" +
			"Date: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <" + id + "@customer.example>\n\nI am out of the office until Monday.\n"
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		env   []string
		want  string
	}{
		{name: "postfix flags=R", stdin: "Return-Path: <MAILER-DAEMON>\n" + vacation("p1"), want: "recorded"},
		{name: "postfix flags=FR", stdin: "From MAILER-DAEMON  Mon Mar  2 10:00:01 2026\nReturn-Path: <MAILER-DAEMON>\n" + vacation("p2"), want: "recorded"},
		{name: "exim return_path_add", stdin: "Return-path: <>\nEnvelope-to: support@example.com\n" + vacation("e1"), want: "recorded"},
		{name: "qmail-local double bounce", stdin: "Return-Path: <#@[]>\nDelivered-To: support@example.com\n" + vacation("q1"), want: "recorded"},
		{name: "postfix argv -f ${sender}", stdin: vacation("f1"), args: []string{"-f", "MAILER-DAEMON"}, want: "recorded"},
		{name: "sendmail -f <>", stdin: vacation("f2"), args: []string{"-f", "<>"}, want: "recorded"},
		{name: "-f with spaces", stdin: vacation("f3"), args: []string{"-f", "< >"}, want: "recorded"},
		{name: "qmail/exim SENDER empty", stdin: vacation("s1"), env: []string{"SENDER="}, want: "recorded"},
		{name: "qmail SENDER double bounce", stdin: vacation("s2"), env: []string{"SENDER=#@[]"}, want: "recorded"},
		{name: "a Return-Path in the mail wins over SENDER", stdin: "Return-Path: <MAILER-DAEMON>\n" + vacation("s3"), env: []string{"SENDER=jane@customer.example"}, want: "recorded"},
		{name: "real sender -f opens a case", stdin: vacation("r1"), args: []string{"-f", "jane@customer.example"}, want: "created"},
		{name: "real sender in SENDER opens a case", stdin: vacation("r2"), env: []string{"SENDER=jane@customer.example"}, want: "created"},
		{name: "no envelope at all opens a case", stdin: vacation("r3"), want: "created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, append([]string{"pipe", "--config", cfg, "-v"}, tt.args...)...)
			env := []string{"MAILCASE_LOG_LEVEL=error"}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "SENDER=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, tt.env...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			var ee *exec.ExitError
			require.False(t, errors.As(err, &ee), "exit %v, stderr: %s", err, &errb)
			require.NoError(t, err)
			assert.Equal(t, tt.want, strings.Fields(out.String())[0], "stdout %q", out.String())
		})
	}
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	defer store.Close()
	cases, err := store.ListCases(t.Context(), nil)
	require.NoError(t, err)
	assert.Len(t, cases, 3, "only the three mails with a real or no envelope sender open cases")
}

func TestWithEnvelopeSender(t *testing.T) {
	m := "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"
	assert.Equal(t, "Return-Path: <>\r\n"+m, string(withEnvelopeSender([]byte(m), "MAILER-DAEMON")))
	assert.Equal(t, "Return-Path: <a@b.example>\r\n"+m, string(withEnvelopeSender([]byte(m), "<a@b.example>\r\nX: y")))
	lf := "From: a@b.example\nSubject: x\n\nbody\n"
	assert.Equal(t, "Return-Path: <>\n"+lf, string(withEnvelopeSender([]byte(lf), "")))
	kept := "Return-Path: <x@y.example>\n" + lf
	assert.Equal(t, kept, string(withEnvelopeSender([]byte(kept), "")))
	mbox := "From MAILER-DAEMON  Mon Mar  2 10:00:01 2026\n" + lf
	assert.Equal(t, "From MAILER-DAEMON  Mon Mar  2 10:00:01 2026\nReturn-Path: <>\n"+lf, string(withEnvelopeSender([]byte(mbox), "#@[]")))
}

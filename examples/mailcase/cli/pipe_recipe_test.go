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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeRecipe is the Postfix master.cf entry of the README.
type pipeRecipe struct {
	flags string
	argv  []string
}

// readmePipeRecipe reads the pipe(8) entry of the README's master.cf block:
// the service line, then the indented continuation lines with flags= and
// argv= (argv is the rest of the entry).
func readmePipeRecipe(t *testing.T) pipeRecipe {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "# Postfix master.cf\n")
	require.True(t, ok, "README has no Postfix master.cf block")
	var entry []string
	for i, line := range strings.Split(after, "\n") {
		if i > 0 && !strings.HasPrefix(line, " ") {
			break
		}
		entry = append(entry, strings.Fields(line)...)
	}
	require.GreaterOrEqual(t, len(entry), 8, "service line: %v", entry)
	require.Equal(t, "pipe", entry[7], "the entry runs pipe(8)")
	var r pipeRecipe
	for i, w := range entry[8:] {
		if v, ok := strings.CutPrefix(w, "flags="); ok {
			r.flags = v
		}
		if v, ok := strings.CutPrefix(w, "argv="); ok {
			r.argv = append([]string{v}, entry[8+i+1:]...)
			break
		}
	}
	require.NotEmpty(t, r.argv, "no argv= in %v", entry)
	return r
}

// postfixPipe does what Postfix's pipe(8) does with flags and argv for one
// recipient: it expands ${sender}, ${recipient}, ${user}, ${extension},
// ${domain}, ${nexthop}, ${original_recipient} in argv (quoting the local
// part with q), and prepends Return-Path: (R), a "From sender date" line
// (F), Delivered-To: (D) and X-Original-To: (O); > quotes body lines that
// start with "From " and . doubles leading dots; h and u fold case. The
// null sender is MAILER-DAEMON, as Postfix writes it.
func postfixPipe(flags string, argv []string, sender, recipient string, mail []byte) ([]string, []byte) {
	has := func(c string) bool { return strings.Contains(flags, c) }
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	addr := func(a string) string {
		if has("h") {
			a = strings.ToLower(a)
		}
		if has("q") {
			if local, dom, ok := strings.Cut(a, "@"); ok && strings.ContainsAny(local, " \"\\()<>,;:[]") {
				a = `"` + strings.ReplaceAll(local, `"`, `\"`) + `"@` + dom
			}
		}
		return a
	}
	local, domain, _ := strings.Cut(recipient, "@")
	rcpt := recipient
	if has("u") {
		rcpt = strings.ToLower(local) + "@" + domain
	}
	repl := strings.NewReplacer("${sender}", addr(sender), "${recipient}", addr(rcpt),
		"${original_recipient}", addr(rcpt), "${user}", local, "${domain}", domain, "${nexthop}", domain,
		"${extension}", "", "${mailbox}", local)
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = repl.Replace(a)
	}
	var b bytes.Buffer
	if has("F") {
		fmt.Fprintf(&b, "From %s  %s\n", sender, time.Now().UTC().Format("Mon Jan _2 15:04:05 2006"))
	}
	if has("R") {
		fmt.Fprintf(&b, "Return-Path: <%s>\n", sender)
	}
	if has("O") {
		fmt.Fprintf(&b, "X-Original-To: %s\n", rcpt)
	}
	if has("D") {
		fmt.Fprintf(&b, "Delivered-To: %s\n", rcpt)
	}
	inBody := false
	for _, line := range strings.SplitAfter(string(mail), "\n") {
		if line == "" {
			continue
		}
		// Postfix hands the command LF line ends (pipe(8) without flag X
		// still strips CR of CRLF, as it stores mail with LF).
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r") + "\n"
		if inBody && has(">") && strings.HasPrefix(line, "From ") {
			line = ">" + line
		}
		if has(".") && strings.HasPrefix(line, ".") {
			line = "." + line
		}
		if line == "\n" {
			inBody = true
		}
		b.WriteString(line)
	}
	return out, b.Bytes()
}

// TestREADME_PostfixPipeRecipe runs the README's master.cf pipe entry, with
// its exact flags and argv, against the built binary: once as pipe(8)
// would run it, and with the real Postfix when it is installed.
func TestREADME_PostfixPipeRecipe(t *testing.T) {
	bin := buildBinary(t)
	r := readmePipeRecipe(t)
	assert.Equal(t, "Rq", r.flags, "the README's flags (update the test's expectations with the README)")
	require.Equal(t, "/usr/local/bin/mailcase", r.argv[0])

	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := writeFile(t, dir, "mailcase.yaml", fmt.Sprintf("store: sqlite://%s\nmailboxes:\n"+
		"  - name: support\n    address: support@example.com\n", db))
	run := func(sender string, mail []byte) (string, string, int) {
		t.Helper()
		argv, stdin := postfixPipe(r.flags, r.argv, sender, "support@example.com", mail)
		args := argv[1:]
		for i, a := range args { // the configuration path of the README, here in a temporary directory
			if a == "/etc/mailcase/mailcase.yaml" {
				args[i] = cfg
			}
		}
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error")
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return out.String(), errb.String(), code
	}

	mail := []byte("From: Customer <c@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <fire-1@customer.example>\r\n\r\nIt is on fire.\r\n.\r\nFrom here it spreads.\r\n")
	_, stderr, code := run("c@customer.example", mail)
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	// Redelivery (Postfix retries after a lost exit status) is safe.
	_, stderr, code = run("c@customer.example", mail)
	require.Equal(t, 0, code, "stderr:\n%s", stderr)

	stdout, errOut, code := runBinary(t, bin, "cases", "--json", "--store", db)
	require.Equal(t, 0, code, "stderr:\n%s", errOut)
	assert.Equal(t, 1, strings.Count(string(stdout), `"message_id": "fire-1@customer.example"`), "filed once:\n%s", stdout)
	assert.Contains(t, string(stdout), `"subject": "Printer on fire"`)

	t.Run("real postfix", func(t *testing.T) {
		postfix, err := exec.LookPath("postfix")
		if err != nil {
			for _, p := range []string{"/usr/sbin/postfix", "/usr/local/sbin/postfix"} {
				if _, serr := os.Stat(p); serr == nil {
					postfix, err = p, nil
				}
			}
		}
		if err != nil {
			t.Skip("Postfix is not installed: only pipe(8)'s behaviour was emulated (flags " + r.flags + ")")
		}
		// With Postfix installed, check that it accepts the recipe as a
		// master.cf entry (postconf -M parses the service definition).
		postconf := filepath.Join(filepath.Dir(postfix), "postconf")
		entry := "mailcase/unix=mailcase unix - n n - 4 pipe flags=" + r.flags + " user=mailcase argv=" + strings.Join(r.argv, " ")
		confDir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(confDir, "main.cf"), nil, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(confDir, "master.cf"), nil, 0o644))
		out, err := exec.CommandContext(t.Context(), postconf, "-c", confDir, "-M", entry).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = exec.CommandContext(t.Context(), postconf, "-c", confDir, "-M", "mailcase/unix").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "flags="+r.flags)
	})
}

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeMail runs `bin pipe` with stdin and returns the exit code and stderr.
func pipeMail(t *testing.T, bin string, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"pipe"}, args...)...)
	cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error")
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// The MTA pipe: sendmail exit codes for every outcome, run on the built
// binary as an MTA would.
func TestPipeBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "cases.db")
	cfg := writeFile(t, dir, "mailcase.yaml", fmt.Sprintf("store: sqlite://%s\nmailboxes:\n  - name: support\n    address: support@example.com\n", db))
	down := writeFile(t, dir, "down.yaml", "store: postgres://nobody@127.0.0.1:1/none?connect_timeout=1\nmailboxes: [{name: support}]\n")
	two := writeFile(t, dir, "two.yaml", fmt.Sprintf("store: sqlite://%s\nmailboxes: [{name: a}, {name: b}]\n", db))
	mail := []byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <fire-1@customer.example>\r\n\r\nHelp!\r\n")
	garbage, err := os.ReadFile("testdata/unparseable.eml")
	require.NoError(t, err)

	tests := []struct {
		name     string
		stdin    []byte
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "filed", stdin: mail, args: []string{"--config", cfg, "-v"}, wantCode: 0, wantOut: "created"},
		{name: "redelivered: filed once", stdin: mail, args: []string{"--config", cfg, "-v"}, wantCode: 0, wantOut: "duplicate"},
		{name: "never fileable: quarantined, EX_DATAERR", stdin: garbage, args: []string{"--config", cfg}, wantCode: exDataErr, wantErr: "quarantined"},
		{name: "empty input", stdin: nil, args: []string{"--config", cfg}, wantCode: exDataErr, wantErr: "empty"},
		{name: "store down: EX_TEMPFAIL", stdin: mail, args: []string{"--config", down}, wantCode: exTempFail, wantErr: "open store"},
		{name: "missing config: EX_TEMPFAIL", stdin: mail, args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantCode: exTempFail, wantErr: "config"},
		{name: "ambiguous mailbox: EX_TEMPFAIL", stdin: mail, args: []string{"--config", two}, wantCode: exTempFail, wantErr: "--mailbox"},
		{name: "bad flag: EX_TEMPFAIL", stdin: mail, args: []string{"--nope"}, wantCode: exTempFail},
		{name: "chosen mailbox", stdin: mail, args: []string{"--config", two, "--mailbox", "b", "-v"}, wantCode: 0, wantOut: "created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := pipeMail(t, bin, tt.stdin, tt.args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", errOut)
			assert.Contains(t, out, tt.wantOut)
			assert.Contains(t, errOut, tt.wantErr)
		})
	}

	t.Run("lmtp", func(t *testing.T) {
		cmd := exec.Command(bin, "lmtp", "--config", cfg, "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error")
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, "stderr: %s", &errb)
		addr := strings.TrimSpace(strings.TrimPrefix(line, "lmtp listening on "))
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		c := smtp.NewClientLMTP(conn)
		require.NoError(t, c.Hello("mta.example"))
		require.NoError(t, c.Mail("bob@customer.example", nil))
		require.NoError(t, c.Rcpt("support@example.com", nil))
		w, err := c.Data()
		require.NoError(t, err)
		_, err = io.WriteString(w, "From: Bob <bob@customer.example>\r\nSubject: Via LMTP\r\nMessage-ID: <lmtp-1@customer.example>\r\n\r\nHi\r\n")
		require.NoError(t, err)
		_, err = w.CloseWithLMTPResponse()
		require.NoError(t, err, "250 once filed")
		require.NoError(t, c.Quit())
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait(), "stderr: %s", &errb)
	})

	// The quarantined mail is kept with its raw bytes.
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	defer store.Close()
	q, err := store.ListQuarantine(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, garbage, q[0].Raw)
	cases, err := store.ListCases(t.Context(), nil)
	require.NoError(t, err)
	assert.Len(t, cases, 3, "one per mailbox and one over LMTP; the redelivery filed nothing")
}

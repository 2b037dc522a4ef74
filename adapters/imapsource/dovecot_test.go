package imapsource_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
)

// dovecotConfig is a Dovecot 2.3 configuration: implicit TLS on one port,
// one static user, Maildir storage under dir.
const dovecotConfig = `protocols = imap
listen = 127.0.0.1
base_dir = {{dir}}/run
state_dir = {{dir}}/state
log_path = {{dir}}/dovecot.log
info_log_path = {{dir}}/dovecot.log
ssl = required
ssl_cert = <{{dir}}/cert.pem
ssl_key = <{{dir}}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{{dir}}/mail/%u
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = {{user}}
default_internal_group = {{group}}
default_login_user = {{login}}
mail_uid = {{user}}
mail_gid = {{group}}
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid={{user}} gid={{group}} home={{dir}}/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = {{port}}
    ssl = yes
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Filed {
    auto = create
  }
}
`

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDovecot starts Dovecot from the system package with a configuration
// written by the test. It skips when Dovecot is not installed, unless
// EMAILCRM_REQUIRE_DOVECOT=1 (set by .ci/dovecot-test.sh).
func startDovecot(t *testing.T) (addr string, cert *imaptest.Cert) {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr == nil {
			bin, err = "/usr/sbin/dovecot", nil
		}
	}
	if err != nil {
		if os.Getenv("EMAILCRM_REQUIRE_DOVECOT") == "1" {
			t.Fatal("dovecot is not installed (EMAILCRM_REQUIRE_DOVECOT=1)")
		}
		t.Skip("dovecot is not installed: run .ci/dovecot-test.sh (installs dovecot-imapd) to run this test")
	}
	out, _ := exec.Command(bin, "--version").Output()
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "2.3") {
		t.Skipf("dovecot %s: this test writes a Dovecot 2.3 configuration", v)
	}
	cert, err = imaptest.NewCert()
	require.NoError(t, err)

	// Dovecot drops privileges: the directory must be reachable by its
	// users, and the mail owned by the mail user.
	dir, err := os.MkdirTemp("", "emailcrm-dovecot-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	mailUser, login := "", "dovenull"
	if os.Geteuid() == 0 {
		mailUser = "dovecot"
	} else {
		u, err := user.Current()
		require.NoError(t, err)
		mailUser, login = u.Username, u.Username
	}
	u, err := user.Lookup(mailUser)
	require.NoError(t, err, "dovecot user")
	g, err := user.LookupGroupId(u.Gid)
	require.NoError(t, err)
	if _, err := user.Lookup(login); err != nil {
		login = mailUser
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{"run", "state", "mail", "home"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	for _, d := range []string{"mail", "home"} {
		require.NoError(t, os.Chown(filepath.Join(dir, d), uid, gid))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), cert.CertPEM, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), cert.KeyPEM, 0o600))
	port := freePort(t)
	conf := strings.NewReplacer("{{dir}}", dir, "{{user}}", mailUser, "{{group}}", g.Name,
		"{{login}}", login, "{{port}}", strconv.Itoa(port)).Replace(dovecotConfig)
	confPath := filepath.Join(dir, "dovecot.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))

	cmd := exec.Command(bin, "-F", "-c", confPath)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = exec.Command(bin, "-c", confPath, "stop").Run()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot output:\n%s\nlog:\n%s", stderr.String(), log)
		}
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "dovecot did not start: %s", &stderr)
	return addr, cert
}

// TestDovecot runs the source against a real Dovecot: TLS, batched fetch,
// MOVE after commit, IDLE push and the UIDVALIDITY state.
func TestDovecot(t *testing.T) {
	addr, cert := startDovecot(t)
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: cert.Client})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login("support", "secret").Wait())
	for i := range 30 {
		raw := mail(i)
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		_, err := cmd.Write(raw)
		require.NoError(t, err)
		require.NoError(t, cmd.Close())
		_, err = cmd.Wait()
		require.NoError(t, err)
	}

	st := newStore(t)
	p := newPipeline(t, st)
	opts := imapsource.Options{
		TLSConfig: cert.Client, Mailbox: "support", State: st,
		After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Filed"}, BatchSize: 7,
	}
	login := imapsource.Login{Username: "support", Password: "secret"}
	src, err := imapsource.Dial(t.Context(), addr, login, &opts)
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context(), src))
	require.NoError(t, src.Flush(t.Context()))
	assert.EqualValues(t, 30, p.Stats().Created)
	count := func(folder string) uint32 {
		sd, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		require.NoError(t, err)
		return *sd.NumMessages
	}
	assert.EqualValues(t, 0, count("INBOX"))
	assert.EqualValues(t, 30, count("Filed"))
	require.NoError(t, src.Close())
	v, ok, err := st.GetState(t.Context(), "imap/support/support@"+addr+"/INBOX")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Contains(t, string(v), `"next_uid":31`)

	// IDLE push.
	opts.Watch, opts.PollInterval = true, time.Hour
	src, err = imapsource.Dial(t.Context(), addr, login, &opts)
	require.NoError(t, err)
	defer src.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		raw := mail(99)
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		_, _ = cmd.Write(raw)
		_ = cmd.Close()
		_, _ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, err := src.Receive(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(r.Raw), "Problem 99")
	require.NoError(t, src.Ack(ctx, r, mailcase.Done, ""))
	require.NoError(t, src.Flush(ctx))
	assert.EqualValues(t, 31, count("Filed"))
	fmt.Fprintln(os.Stderr, "dovecot: 31 mails filed and moved")

	// Flag mode: mail read before the poll (\Seen) is filed and marked
	// with the private keyword, which Dovecot stores.
	raw := mail(100)
	cmd := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	_, err = cmd.Write(raw)
	require.NoError(t, err)
	require.NoError(t, cmd.Close())
	_, err = cmd.Wait()
	require.NoError(t, err)
	st2 := newStore(t)
	p2 := newPipeline(t, st2)
	fopts := imapsource.Options{TLSConfig: cert.Client, Mailbox: "support",
		State: st2, After: imapsource.AfterCommit{Kind: imapsource.Flag}}
	fsrc, err := imapsource.Dial(t.Context(), addr, login, &fopts)
	require.NoError(t, err)
	defer fsrc.Close()
	require.NoError(t, p2.Run(t.Context(), fsrc))
	assert.EqualValues(t, 1, p2.Stats().Created)
	_, err = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0].Flags, imap.Flag(imapsource.FiledKeyword))
}

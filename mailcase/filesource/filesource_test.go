package filesource_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func eml(id, body string) string {
	return "From: a@b.example\r\nMessage-ID: <" + id + ">\r\nSubject: s\r\n\r\n" + body + "\r\n"
}

func write(t *testing.T, path, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
}

func drain(t *testing.T, s *filesource.Source) []*mailcase.Received {
	t.Helper()
	var out []*mailcase.Received
	for {
		r, err := s.Receive(t.Context())
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, r)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.eml"), eml("b@x", "B"))
	write(t, filepath.Join(dir, "a.eml"), eml("a@x", "A"))
	write(t, filepath.Join(dir, "c.EML"), eml("c@x", "C"))
	write(t, filepath.Join(dir, "notes.txt"), "not mail")
	s, err := filesource.OpenDir(dir, &filesource.Options{Quiet: true, Mailbox: "import"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	got := drain(t, s)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"a.eml", "b.eml", "c.EML"}, []string{got[0].ID, got[1].ID, got[2].ID})
	assert.True(t, got[0].Quiet)
	assert.Equal(t, "import", got[0].Mailbox)
	assert.Contains(t, string(got[0].Raw), "A")

	// Nothing moved before Ack.
	assert.Equal(t, []string{"a.eml", "b.eml", "c.EML", "notes.txt"}, names(t, dir))

	ctx := t.Context()
	require.NoError(t, s.Ack(ctx, got[0], mailcase.Done, ""))
	require.NoError(t, s.Ack(ctx, got[1], mailcase.Quarantine, "panic: boom"))
	require.NoError(t, s.Ack(ctx, got[2], mailcase.Retry, "store down"))
	assert.Equal(t, []string{"a.eml"}, names(t, filepath.Join(dir, "done")))
	assert.Equal(t, []string{"b.eml", "b.eml.reason"}, names(t, filepath.Join(dir, "quarantine")))
	reason, err := os.ReadFile(filepath.Join(dir, "quarantine", "b.eml.reason"))
	require.NoError(t, err)
	assert.Equal(t, "panic: boom\n", string(reason))
	assert.Equal(t, []string{"c.EML", "done", "notes.txt", "quarantine"}, names(t, dir))

	assert.Error(t, s.Ack(ctx, got[0], mailcase.Done, ""), "a second Ack is refused")
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Close(), mailcase.ErrClosed)
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, mailcase.ErrClosed)
}

func TestOpenDir_DoneActions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action filesource.DoneAction
		left   []string
	}{
		{name: "keep", action: filesource.Keep, left: []string{"a.eml"}},
		{name: "delete", action: filesource.Delete, left: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "a.eml"), eml("a@x", "A"))
			s, err := filesource.OpenDir(dir, &filesource.Options{OnDone: tc.action})
			require.NoError(t, err)
			r := drain(t, s)
			require.Len(t, r, 1)
			require.NoError(t, s.Ack(t.Context(), r[0], mailcase.Done, ""))
			assert.Equal(t, tc.left, names(t, dir))
		})
	}
	assert.Equal(t, "delete", filesource.Delete.String())
	assert.Equal(t, "DoneAction(9)", filesource.DoneAction(9).String())
	_, err := filesource.OpenDir(filepath.Join(t.TempDir(), "missing"), nil)
	assert.Error(t, err)
}

func TestOpenDir_MaxSizeTruncates(t *testing.T) {
	dir := t.TempDir()
	big := eml("big@x", strings.Repeat("y", 10000))
	write(t, filepath.Join(dir, "big.eml"), big)
	s, err := filesource.OpenDir(dir, &filesource.Options{MaxSize: 1000})
	require.NoError(t, err)
	r := drain(t, s)
	require.Len(t, r, 1)
	assert.True(t, r[0].Truncated)
	assert.Equal(t, int64(len(big)), r[0].Size)
	assert.True(t, strings.HasSuffix(string(r[0].Raw), "\r\n\r\n"))
	assert.NotContains(t, string(r[0].Raw), "yyy")
}

func TestOpenMaildir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "new", "1.host"), eml("n1@x", "N1"))
	write(t, filepath.Join(dir, "new", "2.host"), eml("n2@x", "N2"))
	write(t, filepath.Join(dir, "cur", "0.host:2,F"), eml("c0@x", "C0"))
	write(t, filepath.Join(dir, "cur", "3.host:2,S"), eml("c3@x", "C3"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	s, err := filesource.OpenMaildir(dir, nil)
	require.NoError(t, err)
	got := drain(t, s)
	require.Len(t, got, 4)
	assert.Equal(t, []string{"new/1.host", "new/2.host", "cur/0.host:2,F", "cur/3.host:2,S"},
		[]string{got[0].ID, got[1].ID, got[2].ID, got[3].ID})
	ctx := t.Context()
	require.NoError(t, s.Ack(ctx, got[0], mailcase.Done, ""))
	require.NoError(t, s.Ack(ctx, got[1], mailcase.Quarantine, "unparseable"))
	require.NoError(t, s.Ack(ctx, got[2], mailcase.Done, ""))
	require.NoError(t, s.Ack(ctx, got[3], mailcase.Done, ""))
	assert.Empty(t, names(t, filepath.Join(dir, "new")))
	assert.Equal(t, []string{"0.host:2,FS", "1.host:2,S", "3.host:2,S"}, names(t, filepath.Join(dir, "cur")))
	assert.Equal(t, []string{"2.host", "2.host.reason"}, names(t, filepath.Join(dir, "quarantine")))

	_, err = filesource.OpenMaildir(t.TempDir(), nil)
	assert.Error(t, err, "not a Maildir")
}

func TestOpenMaildir_Delete(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "new", "1.host"), eml("n1@x", "N1"))
	s, err := filesource.OpenMaildir(dir, &filesource.Options{OnDone: filesource.Delete})
	require.NoError(t, err)
	got := drain(t, s)
	require.Len(t, got, 1)
	require.NoError(t, s.Ack(t.Context(), got[0], mailcase.Done, ""))
	assert.Empty(t, names(t, filepath.Join(dir, "new")))
}

const mboxData = "From alice@example.com Mon Mar  2 10:00:00 2026\n" +
	"From: alice@example.com\nMessage-ID: <m1@x>\nSubject: one\n\n" +
	"Hello\n>From the start of a line\n>>From deeper\n\n" +
	"From bob@example.com Mon Mar  2 11:00:00 2026\n" +
	"From: bob@example.com\nMessage-ID: <m2@x>\nSubject: two\n\n" +
	"Body two\nFrom inside without blank line stays\n\n" +
	"From carol@example.com Mon Mar  2 12:00:00 2026\n" +
	"From: carol@example.com\nMessage-ID: <m3@x>\nSubject: three\n\nBody three\n\n"

func TestOpenMbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "archive.mbox")
	write(t, path, mboxData)
	s, err := filesource.OpenMbox(path, &filesource.Options{Quiet: true})
	require.NoError(t, err)
	got := drain(t, s)
	require.Len(t, got, 3)
	assert.Equal(t, "From: alice@example.com\nMessage-ID: <m1@x>\nSubject: one\n\nHello\nFrom the start of a line\n>From deeper\n", string(got[0].Raw))
	assert.Contains(t, string(got[1].Raw), "Body two\nFrom inside without blank line stays\n")
	assert.True(t, strings.HasSuffix(string(got[2].Raw), "Body three\n"))
	assert.True(t, got[0].Quiet)
	assert.Equal(t, "archive.mbox", got[0].Mailbox)

	ctx := t.Context()
	require.NoError(t, s.Ack(ctx, got[0], mailcase.Done, ""))
	require.NoError(t, s.Ack(ctx, got[1], mailcase.Quarantine, "bad\nmail"))
	require.NoError(t, s.Ack(ctx, got[2], mailcase.Retry, "later"))
	require.NoError(t, s.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, mboxData, string(data), "the mbox is never rewritten")
	state, err := os.ReadFile(path + filesource.StateSuffix)
	require.NoError(t, err)
	assert.Regexp(t, `^done 0 sha256:[0-9a-f]{32}\nquarantine `+got[1].ID+` sha256:[0-9a-f]{32} bad mail\n$`, string(state))

	// A re-run skips settled mails.
	s2, err := filesource.OpenMbox(path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	again := drain(t, s2)
	require.Len(t, again, 1)
	assert.Equal(t, got[2].ID, again[0].ID)
	assert.Equal(t, got[2].Raw, again[0].Raw)
}

// mboxMail is one mbox entry whose size does not depend on n, so a
// rewritten spool puts different mail at the offsets of the old one.
func mboxMail(from string, n int) string {
	return fmt.Sprintf("From %s Mon Mar  2 10:00:00 2026\nFrom: %s\nMessage-ID: <n%03d@x>\nSubject: s%03d\n\nbody %03d\n\n", from, from, n, n, n)
}

// mboxRun drains the mbox at path, acknowledges every mail Done, and
// returns the Message-IDs read.
func mboxRun(t *testing.T, path string) []string {
	t.Helper()
	s, err := filesource.OpenMbox(path, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	var ids []string
	for _, r := range drain(t, s) {
		ids = append(ids, mailcase.ThreadKey(r.Raw))
		require.NoError(t, s.Ack(t.Context(), r, mailcase.Done, ""))
	}
	return ids
}

func TestOpenMbox_SpoolTruncatedOrReplaced(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(t *testing.T, path string)
		want    []string
	}{
		{name: "truncated then new mail at offset 0", want: []string{"n010@x"},
			rewrite: func(t *testing.T, path string) {
				require.NoError(t, os.Truncate(path, 0))
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				require.NoError(t, err)
				_, err = f.WriteString(mboxMail("new@example.com", 10))
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}},
		{name: "replaced by another file", want: []string{"n020@x", "n021@x"},
			rewrite: func(t *testing.T, path string) {
				tmp := path + ".new"
				write(t, tmp, mboxMail("x@example.com", 20)+mboxMail("y@example.com", 21))
				require.NoError(t, os.Rename(tmp, path))
			}},
		{name: "shrunk keeping the first mail", want: []string{"n030@x"},
			rewrite: func(t *testing.T, path string) {
				write(t, path, mboxMail("a@example.com", 1)+mboxMail("z@example.com", 30))
			}},
		{name: "appended", want: []string{"n040@x"},
			rewrite: func(t *testing.T, path string) {
				write(t, path, mboxMail("a@example.com", 1)+mboxMail("b@example.com", 2)+mboxMail("c@example.com", 40))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.mbox")
			write(t, path, mboxMail("a@example.com", 1)+mboxMail("b@example.com", 2))
			require.Equal(t, []string{"n001@x", "n002@x"}, mboxRun(t, path))
			require.Empty(t, mboxRun(t, path), "settled mail is skipped")
			tc.rewrite(t, path)
			assert.Equal(t, tc.want, mboxRun(t, path))
			assert.Empty(t, mboxRun(t, path))
		})
	}
}

func TestOpenMbox_LegacyStateIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.mbox")
	write(t, path, mboxMail("a@example.com", 1))
	write(t, path+filesource.StateSuffix, "done 0\nquarantine 0 some reason\ndone 0 sha256:zz\n")
	assert.Equal(t, []string{"n001@x"}, mboxRun(t, path), "offsets without a hash are not trusted")
	assert.Empty(t, mboxRun(t, path))
}

func TestOpenMbox_Edge(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{name: "empty", data: "", want: nil},
		{name: "blank lines only", data: "\n\n\r\n", want: nil},
		{name: "CRLF", data: "From a Mon\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b Tue\r\nSubject: y\r\n\r\nb2\r\n",
			want: []string{"Subject: x\r\n\r\nbody\r\n", "Subject: y\r\n\r\nb2\r\n"}},
		{name: "no From_ line", data: "Subject: plain\n\nbody\n", want: []string{"Subject: plain\n\nbody\n"}},
		{name: "no final newline", data: "From a\nSubject: z\n\nend", want: []string{"Subject: z\n\nend"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.mbox")
			write(t, path, tc.data)
			s, err := filesource.OpenMbox(path, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			var got []string
			for _, r := range drain(t, s) {
				got = append(got, string(r.Raw))
			}
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := filesource.OpenMbox(filepath.Join(t.TempDir(), "missing"), nil)
	assert.Error(t, err)
}

func FuzzMbox(f *testing.F) {
	f.Add([]byte(mboxData))
	f.Add([]byte("From \n\nFrom \n>From \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.mbox")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := filesource.OpenMbox(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		total := 0
		for {
			r, err := s.Receive(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			total += len(r.Raw)
			if total > len(data) {
				t.Fatalf("messages longer than the file")
			}
		}
	})
}

func TestSource_ConcurrentReceiveAck(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		write(t, filepath.Join(dir, strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))+".eml"), eml("c@x", "C"))
	}
	s, err := filesource.OpenDir(dir, nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for range 4 {
		wg.Go(func() {
			for {
				r, err := s.Receive(context.Background())
				if err == io.EOF {
					return
				}
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.False(t, seen[r.ID], "handed out twice")
				seen[r.ID] = true
				mu.Unlock()
				assert.NoError(t, s.Ack(context.Background(), r, mailcase.Done, ""))
			}
		})
	}
	wg.Wait()
	assert.Len(t, seen, 50)
	assert.Len(t, names(t, filepath.Join(dir, "done")), 50)
}

func TestSource_CancelledReceive(t *testing.T) {
	dir := t.TempDir()
	s, err := filesource.OpenDir(dir, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Receive(t.Context())
	assert.ErrorIs(t, err, io.EOF)
	assert.Error(t, s.Ack(t.Context(), nil, mailcase.Done, ""))
}

func TestOpenDir_UnreadableSkipped(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.eml"), eml("a@x", "A"))
	write(t, filepath.Join(dir, "b.eml"), eml("b@x", "B"))
	s, err := filesource.OpenDir(dir, nil)
	require.NoError(t, err)
	// a.eml becomes unreadable (a directory) after the listing.
	require.NoError(t, os.Remove(filepath.Join(dir, "a.eml")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "a.eml"), 0o755))
	got := drain(t, s)
	require.Len(t, got, 1)
	assert.Equal(t, "b.eml", got[0].ID)
}

func TestOpenDir_VanishedSkipped(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.eml"), eml("a@x", "A"))
	write(t, filepath.Join(dir, "b.eml"), eml("b@x", "B"))
	s, err := filesource.OpenDir(dir, nil)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "a.eml")))
	got := drain(t, s)
	require.Len(t, got, 1)
	assert.Equal(t, "b.eml", got[0].ID)
}

func TestPipelineIntegration(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "01.eml"), eml("good@x", "fine"))
	write(t, filepath.Join(dir, "02.eml"), "  \r\n \r\n")
	write(t, filepath.Join(dir, "03.eml"), eml("good@x", "fine")) // duplicate
	store, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	// A store without quarantine: the source sets bad mail aside.
	noq := mailcase.NewStore(mailcasetest.NewFaultDriver(store.Driver()), nil)
	p, err := mailcase.NewPipeline(noq, &mailcase.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	src, err := filesource.OpenDir(dir, &filesource.Options{Quiet: true})
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context(), src))
	assert.Equal(t, []string{"01.eml", "03.eml"}, names(t, filepath.Join(dir, "done")))
	assert.Equal(t, []string{"02.eml", "02.eml.reason"}, names(t, filepath.Join(dir, "quarantine")))
	st := p.Stats()
	assert.Equal(t, int64(1), st.Created)
	assert.Equal(t, int64(1), st.Duplicates)
	assert.Equal(t, int64(1), st.Quarantined)
}

// Lines longer than the reader's buffer (a base64 body on one line, a
// long header), CRLF blank lines and ">From " lines come back byte for
// byte; acknowledgements from many goroutines at once (they share the
// state file's fsyncs) are all recorded, so a second run skips every mail.
func TestOpenMbox_LongLinesConcurrentAcks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "archive.mbox")
	var data strings.Builder
	var want []string
	for i := range 50 {
		body := fmt.Sprintf("Subject: m%d\r\nX-Long: %s\r\n\r\n%s\r\n\r\n>From the start\r\nend %d\r\n", i,
			strings.Repeat("h", i*997), strings.Repeat("b", 70000+i*5000), i)
		want = append(want, strings.Replace(body, ">From the start", "From the start", 1))
		data.WriteString("From x@example.com Mon Mar  2 10:00:00 2026\r\n" + body + "\r\n")
	}
	write(t, path, data.String())
	s, err := filesource.OpenMbox(path, &filesource.Options{Quiet: true})
	require.NoError(t, err)
	got := drain(t, s)
	require.Len(t, got, len(want))
	for i, r := range got {
		require.Equal(t, want[i], string(r.Raw), "mail %d", i)
	}
	var wg sync.WaitGroup
	for _, r := range got {
		wg.Go(func() { assert.NoError(t, s.Ack(t.Context(), r, mailcase.Done, "")) })
	}
	wg.Wait()
	require.NoError(t, s.Close())

	s, err = filesource.OpenMbox(path, &filesource.Options{Quiet: true})
	require.NoError(t, err)
	defer s.Close()
	assert.Empty(t, drain(t, s), "every acknowledged mail is skipped")
}

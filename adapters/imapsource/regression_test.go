package imapsource_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
)

func receiveAll(t *testing.T, src *imapsource.Source) []*mailcase.Received {
	t.Helper()
	var out []*mailcase.Received
	for {
		r, err := src.Receive(t.Context())
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r)
	}
}

func count(t *testing.T, srv *imaptest.Server, folder string) int {
	t.Helper()
	n, err := srv.Count(folder)
	require.NoError(t, err)
	return n
}

func countFlag(t *testing.T, srv *imaptest.Server, folder string, flag imap.Flag) int {
	t.Helper()
	n, err := srv.CountFlag(folder, flag)
	require.NoError(t, err)
	return n
}

// refuse returns a fault hook refusing op towards arg (any arg when "")
// while on is set.
func refuse(on *atomic.Bool, op, arg string) func(string, string) error {
	return func(o, a string) error {
		if on.Load() && o == op && (arg == "" || a == arg) {
			return errors.New("over quota")
		}
		return nil
	}
}

// Without MOVE, a refused COPY must leave the mail in place: go-imap's
// Move fallback sent STORE \Deleted and EXPUNGE without waiting for the
// COPY's answer, losing it.
func TestRefusedCopyKeepsMail(t *testing.T) {
	tests := []struct {
		name   string
		opts   imapsource.Options
		mails  [][]byte
		folder string
		inbox  int
	}{
		{
			name:   "after-commit move",
			opts:   imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"}},
			mails:  mails(4),
			folder: "Archive",
			inbox:  4,
		},
		{
			name:   "oversize folder",
			opts:   imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, OversizeFolder: "Archive", MaxSize: 300},
			mails:  [][]byte{append(mail(1), strings.Repeat("x", 2000)+"\r\n"...), mail(2)},
			folder: "Archive",
			inbox:  1, // the complete mail is deleted, the truncated one kept
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, &imaptest.Options{Folders: []string{"Archive"}, NoMove: true})
			appendAll(t, srv, tt.mails)
			var on atomic.Bool
			on.Store(true)
			srv.SetFault(refuse(&on, "COPY", tt.folder))
			st := newStore(t)
			p := newPipeline(t, st)
			src := dial(t, srv, st, tt.opts)
			require.NoError(t, p.Run(t.Context(), src))
			assert.EqualValues(t, len(tt.mails), p.Stats().Created)
			assert.Equal(t, tt.inbox, count(t, srv, "INBOX"), "refused COPY: mail kept")
			assert.Zero(t, count(t, srv, tt.folder))
		})
	}
}

// A configured folder that cannot be created is reported by Dial.
func TestDialChecksFolders(t *testing.T) {
	srv := startServer(t, &imaptest.Options{Folders: []string{"Existing"}})
	srv.SetFault(func(op, arg string) error {
		if op == "CREATE" {
			return errors.New("permission denied")
		}
		return nil
	})
	st := newStore(t)
	base := imapsource.Options{TLSConfig: srv.Cert.Client, State: st, After: imapsource.AfterCommit{Kind: imapsource.Delete}}
	tests := []struct {
		name    string
		opts    func(o *imapsource.Options)
		wantErr bool
	}{
		{name: "missing move folder", opts: func(o *imapsource.Options) {
			o.After = imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"}
		}, wantErr: true},
		{name: "missing quarantine folder", opts: func(o *imapsource.Options) { o.QuarantineFolder = "Quarantine" }, wantErr: true},
		{name: "existing folder, CREATE refused", opts: func(o *imapsource.Options) { o.QuarantineFolder = "Existing" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.opts(&o)
			src, err := imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &o)
			if tt.wantErr {
				require.ErrorIs(t, err, imapsource.ErrFolder)
				assert.Contains(t, err.Error(), "permission denied")
				return
			}
			require.NoError(t, err)
			require.NoError(t, src.Close())
		})
	}
}

// Without UIDPLUS the source never sends a plain EXPUNGE (it would remove
// mail others flagged \Deleted): its mail stays flagged \Deleted and
// marked, and is not handed out again, even by a source that lost its
// state.
func TestNoUIDPlusLeavesMarkedMail(t *testing.T) {
	for _, after := range []imapsource.AfterCommit{{Kind: imapsource.Delete}, {Kind: imapsource.Move, Folder: "Archive"}} {
		t.Run(string(after.Kind), func(t *testing.T) {
			srv := startServer(t, &imaptest.Options{Folders: []string{"Archive"}, NoMove: true, NoUIDPlus: true})
			appendAll(t, srv, mails(3))
			_, err := srv.Append("INBOX", mail(99), imap.FlagDeleted, imap.FlagSeen)
			require.NoError(t, err)
			st := newStore(t)
			p := newPipeline(t, st)
			src := dial(t, srv, st, imapsource.Options{After: after})
			require.NoError(t, p.Run(t.Context(), src))
			require.EqualValues(t, 4, p.Stats().Created)
			assert.Equal(t, 4, count(t, srv, "INBOX"), "nothing expunged")
			assert.Equal(t, 4, countFlag(t, srv, "INBOX", imap.FlagDeleted))
			assert.Equal(t, 4, countFlag(t, srv, "INBOX", imapsource.FiledKeyword))
			if after.Kind == imapsource.Move {
				assert.Equal(t, 4, count(t, srv, "Archive"))
			}
			require.NoError(t, src.Close())

			fresh := newStore(t) // state lost: rescans from UID 1
			p2 := newPipeline(t, fresh)
			src2 := dial(t, srv, fresh, imapsource.Options{After: after})
			require.NoError(t, p2.Run(t.Context(), src2))
			assert.Zero(t, p2.Stats().Received, "marked mail is finished")
		})
	}
}

// A refused after-commit action must not hand the filed mail out again
// at once (a hot loop of duplicates and quarantine items): it is retried
// after a backoff.
func TestRefusedActionBacksOff(t *testing.T) {
	t.Run("watch", func(t *testing.T) {
		srv := startServer(t, &imaptest.Options{Folders: []string{"Archive"}})
		appendAll(t, srv, mails(3))
		var on atomic.Bool
		on.Store(true)
		srv.SetFault(refuse(&on, "MOVE", "Archive"))
		st := newStore(t)
		p := newPipeline(t, st)
		src := dial(t, srv, st, imapsource.Options{Watch: true, PollInterval: time.Hour, RetryDelay: 150 * time.Millisecond,
			After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"}})
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		defer cancel()
		go func() {
			time.Sleep(600 * time.Millisecond)
			on.Store(false)
		}()
		_ = p.Run(ctx, src)
		s := p.Stats()
		assert.EqualValues(t, 3, s.Received, "each mail handed out once")
		assert.Zero(t, s.Quarantined)
		assert.Zero(t, count(t, srv, "INBOX"))
		assert.Equal(t, 3, count(t, srv, "Archive"), "moved once the server accepts")
	})
	t.Run("polling", func(t *testing.T) {
		srv := startServer(t, &imaptest.Options{Folders: []string{"Archive"}, NoMove: true})
		appendAll(t, srv, mails(3))
		var on atomic.Bool
		on.Store(true)
		srv.SetFault(refuse(&on, "COPY", "Archive"))
		st := newStore(t)
		p := newPipeline(t, st)
		now := time.Now()
		var clock atomic.Int64
		src := dial(t, srv, st, imapsource.Options{RetryDelay: time.Minute,
			After: imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Archive"},
			Now:   func() time.Time { return now.Add(time.Duration(clock.Load())) }})
		require.NoError(t, p.Run(t.Context(), src))
		require.NoError(t, p.Run(t.Context(), src))
		require.NoError(t, src.Flush(t.Context()))
		assert.EqualValues(t, 3, p.Stats().Received, "not handed out again before the backoff")
		assert.Equal(t, 3, count(t, srv, "INBOX"))

		on.Store(false)
		require.NoError(t, src.Flush(t.Context()))
		assert.Equal(t, 3, count(t, srv, "INBOX"), "still waiting for the backoff")
		clock.Store(int64(61 * time.Second))
		require.NoError(t, p.Run(t.Context(), src))
		assert.EqualValues(t, 3, p.Stats().Received)
		assert.Zero(t, count(t, srv, "INBOX"))
		assert.Equal(t, 3, count(t, srv, "Archive"))
	})
}

// Mail read in webmail before the poll carries \Seen: it must still be
// filed in Flag mode, which marks with a private keyword.
func TestFlagModeFilesReadMail(t *testing.T) {
	tests := []struct {
		name string
		flag string
		want []imap.Flag
	}{
		{name: "default keyword", want: []imap.Flag{imapsource.FiledKeyword}},
		{name: "seen requested: set with the keyword", flag: `\Seen`, want: []imap.Flag{imapsource.FiledKeyword, imap.FlagSeen}},
		{name: "own keyword", flag: "$Filed", want: []imap.Flag{"$Filed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, nil)
			_, err := srv.Append("INBOX", mail(1), imap.FlagSeen)
			require.NoError(t, err)
			_, err = srv.Append("INBOX", mail(2))
			require.NoError(t, err)
			st := newStore(t)
			p := newPipeline(t, st)
			opts := imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Flag, Flag: tt.flag}}
			src := dial(t, srv, st, opts)
			require.NoError(t, p.Run(t.Context(), src))
			assert.EqualValues(t, 2, p.Stats().Created, "read mail filed too")
			for _, f := range tt.want {
				assert.Equal(t, 2, countFlag(t, srv, "INBOX", f), f)
			}
			require.NoError(t, src.Close())
			// Marked mail is skipped even when the watermark is lost.
			fresh := newStore(t)
			p2 := newPipeline(t, fresh)
			src2 := dial(t, srv, fresh, opts)
			require.NoError(t, p2.Run(t.Context(), src2))
			assert.Zero(t, p2.Stats().Received)
		})
	}
}

func TestFlagModeNeedsKeywords(t *testing.T) {
	srv := startServer(t, &imaptest.Options{NoKeywords: true})
	_, err := imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{TLSConfig: srv.Cert.Client, After: imapsource.AfterCommit{Kind: imapsource.Flag}})
	require.ErrorIs(t, err, imapsource.ErrNoKeywords)
	assert.Contains(t, err.Error(), imapsource.FiledKeyword)

	_, err = imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{TLSConfig: srv.Cert.Client, After: imapsource.AfterCommit{Kind: imapsource.Flag, Flag: `\Deleted`}})
	require.ErrorIs(t, err, imapsource.ErrNoKeywords)

	// Delete mode works without keywords.
	src, err := imapsource.Dial(t.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, TLSConfig: srv.Cert.Client})
	require.NoError(t, err)
	require.NoError(t, src.Close())
}

// Truncated mail kept in place carries the filed keyword.
func TestTruncatedKeptInPlaceIsMarked(t *testing.T) {
	srv := startServer(t, nil)
	appendAll(t, srv, [][]byte{append(mail(1), strings.Repeat("x", 3000)+"\r\n"...)})
	st := newStore(t)
	p := newPipeline(t, st)
	src := dial(t, srv, st, imapsource.Options{MaxSize: 500})
	require.NoError(t, p.Run(t.Context(), src))
	require.EqualValues(t, 1, p.Stats().Received)
	assert.Equal(t, 1, count(t, srv, "INBOX"), "never deleted")
	assert.Equal(t, 1, countFlag(t, srv, "INBOX", imapsource.FiledKeyword))
	assert.Zero(t, countFlag(t, srv, "INBOX", imap.FlagSeen))
}

// A mail whose header is over the 4 MiB header limit must not fail every
// run: it is handed out truncated (its first 4 MiB) and the mail behind
// it is received.
func TestHugeHeaderDoesNotBlock(t *testing.T) {
	srv := startServer(t, nil)
	huge := []byte("From: a@b.example\r\nSubject: huge header\r\n")
	for len(huge) < 5<<20 {
		huge = append(huge, "X-Filler: "+strings.Repeat("h", 990)+"\r\n"...)
	}
	huge = append(huge, "\r\nbody\r\n"...)
	appendAll(t, srv, [][]byte{mail(0), huge, mail(2)})
	st := newStore(t)
	src := dial(t, srv, st, imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}, MaxSize: 1 << 20, Reconnects: 2})
	got := receiveAll(t, src)
	require.Len(t, got, 3)
	var truncated []*mailcase.Received
	for _, r := range got {
		if r.Truncated {
			truncated = append(truncated, r)
		} else {
			assert.Contains(t, string(r.Raw), "Hello, issue")
		}
	}
	require.Len(t, truncated, 1)
	tr := truncated[0]
	assert.LessOrEqual(t, len(tr.Raw), 4<<20)
	assert.Greater(t, len(tr.Raw), 1<<20, "the first 4 MiB")
	assert.True(t, bytes.HasPrefix(huge, tr.Raw), "a prefix of the mail")
	assert.EqualValues(t, len(huge), tr.Size)
	for _, r := range got {
		require.NoError(t, src.Ack(t.Context(), r, mailcase.Done, ""))
	}
	require.NoError(t, src.Flush(t.Context()))
	msgs, err := srv.Messages("INBOX")
	require.NoError(t, err)
	require.Len(t, msgs, 1, "the truncated mail is kept")
	assert.True(t, bytes.Equal(huge, msgs[0].Raw))
	assert.Empty(t, receiveAll(t, src))
}

// Filed mail left \Deleted by a crash between STORE and EXPUNGE stays
// unfinished until it is expunged: a watermark saved past it first (the
// expunge refused, or a second crash) left it on the server for good.
func TestDeletedFlagLeftByCrashIsExpungedLater(t *testing.T) {
	srv := startServer(t, nil)
	_, err := srv.Append("INBOX", mail(0), imap.FlagDeleted, imapsource.FiledKeyword)
	require.NoError(t, err)
	appendAll(t, srv, [][]byte{mail(1)})
	var on atomic.Bool
	on.Store(true)
	srv.SetFault(refuse(&on, "EXPUNGE", ""))
	st := newStore(t)
	opts := imapsource.Options{After: imapsource.AfterCommit{Kind: imapsource.Delete}}
	src1 := dial(t, srv, st, opts)
	require.Len(t, receiveAll(t, src1), 1, "the \\Deleted filed mail is not handed out")
	require.NoError(t, src1.Close()) // the mail handed out was never filed
	assert.Equal(t, 2, count(t, srv, "INBOX"), "the expunge was refused")

	on.Store(false)
	src2 := dial(t, srv, st, opts)
	got := receiveAll(t, src2)
	require.Len(t, got, 1)
	require.NoError(t, src2.Ack(t.Context(), got[0], mailcase.Done, ""))
	require.NoError(t, src2.Flush(t.Context()))
	assert.Zero(t, count(t, srv, "INBOX"), "the mail left \\Deleted is expunged by the next source")
}

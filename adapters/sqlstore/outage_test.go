package sqlstore_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// tcpProxy forwards connections to a database server; the tests cut it to
// make the database go away mid-run.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// cut closes every open connection (the server "restarts").
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// stop makes the server unreachable for good.
func (p *tcpProxy) stop() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// TestDatabaseGoesAway cuts the connections to the server while eight
// goroutines file mails, then takes the server away for good. Cut
// connections are retried; once the server is gone calls fail with a clear
// Unavailable error; and every call that returned success was committed
// (checked over a direct connection), which is what acknowledge-after-
// commit relies on.
func TestDatabaseGoesAway(t *testing.T) {
	for _, d := range dialects[1:] { // the server dialects
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			direct := d.url(t)
			u, err := url.Parse(direct)
			require.NoError(t, err)
			proxy := newTCPProxy(t, u.Host)
			u.Host = proxy.addr()
			s, err := sqlstore.OpenURL(ctx, u.String(), &sqlstore.Options{
				Logger: quietLogger(),
				Store:  &mailcase.StoreOptions{MaxAttempts: 6, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, CallTimeout: 3 * time.Second},
			})
			require.NoError(t, err)
			defer s.Close()

			var acked sync.Map // key -> case ID of every successful CreateCase
			var next, okCount, failCount atomic.Int64
			var lastErr atomic.Value
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						e := testEmail(int(next.Add(1)), "outage")
						c, err := s.CreateCase(ctx, &mailcase.NewCase{First: e})
						if err != nil {
							failCount.Add(1)
							lastErr.Store(err)
							continue
						}
						okCount.Add(1)
						acked.Store(e.IdempotencyKey, c.ID)
					}
				}()
			}
			// Transient: cut the connections three times while filing.
			for range 3 {
				time.Sleep(150 * time.Millisecond)
				proxy.cut()
			}
			time.Sleep(150 * time.Millisecond)
			okBefore, failBefore := okCount.Load(), failCount.Load()
			t.Logf("after 3 connection cuts: %d filed, %d failed", okBefore, failBefore)
			assert.Positive(t, okBefore)
			assert.Zero(t, failBefore, "cut connections are retried transparently")

			// Permanent: the server goes away.
			proxy.stop()
			time.Sleep(1500 * time.Millisecond)
			close(stop)
			wg.Wait()
			require.Positive(t, failCount.Load(), "calls fail once the server is gone")
			err, _ = lastErr.Load().(error)
			require.Error(t, err)
			assert.Equal(t, mailcase.Unavailable, mailcase.Code(err), "a clear, retryable code: %v", err)
			t.Logf("with the server gone: %v", err)

			// Every acknowledged mail is in the database.
			check := openURL(t, direct, nil)
			n := 0
			acked.Range(func(k, v any) bool {
				p, ok, err := check.LookupProcessed(ctx, k.(string))
				require.NoError(t, err)
				if assert.True(t, ok, "acknowledged mail %q was not committed", k) {
					assert.Equal(t, v, p.CaseID)
				}
				n++
				return true
			})
			cs, err := check.ListCases(ctx, nil)
			require.NoError(t, err)
			t.Logf("%d mails acknowledged, all committed; %d cases in the database (unacknowledged calls may have committed too: a redelivery is then a duplicate)", n, len(cs))
			assert.GreaterOrEqual(t, len(cs), n)
		})
	}
}

// TestPostgresTerminateBackend kills the store's server processes with
// pg_terminate_backend between calls and while calls run: the store
// reconnects and nothing is lost.
func TestPostgresTerminateBackend(t *testing.T) {
	ctx := t.Context()
	base := postgresURL(t)
	app := randomName()
	s := openURL(t, base+"&application_name="+app, &sqlstore.Options{Logger: quietLogger()})
	admin, _ := rawDB(t, base)
	kill := func() int {
		var n int
		require.NoError(t, admin.QueryRowContext(ctx,
			`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n))
		return n
	}
	for i := range 50 {
		if i%10 == 5 {
			assert.Positive(t, kill(), "the store had connections to kill")
		}
		_, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(i, app)})
		require.NoError(t, err, "mail %d", i)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				_, err := s.CreateCase(ctx, &mailcase.NewCase{First: testEmail(1000+g*100+i, app)})
				assert.NoError(t, err)
			}
		}()
	}
	for range 3 {
		time.Sleep(30 * time.Millisecond)
		kill()
	}
	wg.Wait()
	cs, err := s.ListCases(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, cs, 150, "every mail filed exactly once")
}

// TestPipelineAcksOnlyCommitted runs the pipeline over a source while the
// database goes away mid-run: mails after the outage are left for
// redelivery (Retry, with the cause), and every mail acknowledged Done is
// in the database.
func TestPipelineAcksOnlyCommitted(t *testing.T) {
	for _, d := range dialects[1:] {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			direct := d.url(t)
			u, err := url.Parse(direct)
			require.NoError(t, err)
			proxy := newTCPProxy(t, u.Host)
			u.Host = proxy.addr()
			s, err := sqlstore.OpenURL(ctx, u.String(), &sqlstore.Options{Logger: quietLogger(),
				Store: &mailcase.StoreOptions{MaxAttempts: 2, RetryBase: 10 * time.Millisecond, CallTimeout: 2 * time.Second}})
			require.NoError(t, err)
			defer s.Close()
			corpus := mailcasetest.GenerateCorpus(300, 11)
			src := mailcasetest.NewSource(corpus...)
			src.Mailbox = "support"
			var acked atomic.Int64
			p, err := mailcase.NewPipeline(s, &mailcase.Options{
				Mailbox: mailcase.Mailbox{Name: "support"}, MaxConcurrency: 8, MaxAttempts: 2,
				RetryDelay: 10 * time.Millisecond, Logger: quietLogger(),
				OnResult: func(context.Context, *mailcase.Result) {
					if acked.Add(1) == 100 {
						proxy.stop() // the database goes away mid-run
					}
				},
			})
			require.NoError(t, err)
			defer p.Close()
			require.NoError(t, p.Run(ctx, src))

			check := openURL(t, direct, nil)
			done, retry := 0, 0
			var reason string
			for _, a := range src.Acks() {
				m, err := mailcase.ParseMessage(a.Raw, nil)
				require.NoError(t, err)
				_, ok, err := check.LookupProcessed(ctx, mailcase.IdempotencyKey("support", m))
				require.NoError(t, err)
				switch a.Disposition {
				case mailcase.Done:
					done++
					assert.True(t, ok, "mail %s acknowledged Done but not committed", a.ID)
				case mailcase.Retry:
					retry++
					reason = a.Reason
				default:
					t.Errorf("mail %s: disposition %v (%s) while the database is down", a.ID, a.Disposition, a.Reason)
				}
			}
			t.Logf("%d mails: %d Done (all committed), %d left for redelivery; reason: %s", len(corpus), done, retry, reason)
			assert.Len(t, src.Acks(), len(corpus), "every mail acknowledged once")
			assert.GreaterOrEqual(t, done, 100)
			assert.Positive(t, retry, "mails after the outage are left for redelivery")
			assert.Contains(t, strings.ToLower(reason), "unavailable")
		})
	}
}

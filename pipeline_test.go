package emailcrm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/routing"
	"github.com/emailcrm/emailcrm/threading"
)

func newStore(t *testing.T) *mailcase.Store {
	t.Helper()
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func plugin(t *testing.T, p *emailcrm.Pipeline, role string) emailcrm.Plugin {
	t.Helper()
	for _, pl := range p.Plugins {
		if pl.Role == role {
			return pl
		}
	}
	t.Fatalf("no plugin for role %q in %v", role, p.Plugins)
	return emailcrm.Plugin{}
}

const invoice = "From: a@customer.example\r\nTo: support@example.com\r\nSubject: invoice\r\n" +
	"Message-ID: <inv@customer.example>\r\n\r\nMy invoice is wrong.\r\n"

// Rules given as a file or as a Config route new cases; the plugin list
// says which.
func TestNewPipeline_Rules(t *testing.T) {
	rules := "version: 1\nqueues: [billing, general]\ndefault_queue: general\n" +
		"keywords:\n  threshold: 1\n  sets:\n    - queue: billing\n      words: [invoice]\n"
	file := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(file, []byte(rules), 0o600))
	cfg, err := routing.ParseConfig("inline", []byte(rules))
	require.NoError(t, err)
	mb := mailcase.Mailbox{Name: "support", DefaultQueue: "general"}

	for name, o := range map[string]*emailcrm.Options{
		"file":   {Pipeline: mailcase.Options{Mailbox: mb}, RulesFile: file},
		"config": {Pipeline: mailcase.Options{Mailbox: mb}, Rules: cfg},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := emailcrm.NewPipeline(newStore(t), o)
			require.NoError(t, err)
			defer p.Close()
			res, err := p.Process(context.Background(), []byte(invoice), &mailcase.ProcessOptions{DryRun: true})
			require.NoError(t, err)
			require.NotNil(t, res.Outcome.Route)
			assert.Equal(t, "billing", res.Outcome.Route.Queue)
			r := plugin(t, p, "router")
			assert.Equal(t, "routing.Router", r.Name)
			assert.Contains(t, r.Detail, "2 queues")
			if name == "file" {
				assert.Contains(t, r.Detail, file)
			} else {
				assert.Contains(t, r.Detail, "inline")
			}
		})
	}
}

// Roles the caller fills are kept as they are and listed by type; bad
// options are errors, not a pipeline with a role silently missing.
func TestNewPipeline_CallerPluginsAndErrors(t *testing.T) {
	store := newStore(t)
	router := mailcase.RouterFunc(func(context.Context, *mailcase.Delivery) (mailcase.Route, error) {
		return mailcase.Route{Queue: "mine", Rule: "own"}, nil
	})
	p, err := emailcrm.NewPipeline(store, &emailcrm.Options{
		Pipeline: mailcase.Options{Router: router}, RulesFile: "/does/not/matter.yaml"})
	require.NoError(t, err, "a caller's router wins over rules")
	defer p.Close()
	assert.Equal(t, "mailcase.RouterFunc", plugin(t, p, "router").Name)
	res, err := p.Process(context.Background(), []byte(invoice), &mailcase.ProcessOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, "mine", res.Outcome.Route.Queue)

	_, err = emailcrm.NewPipeline(store, &emailcrm.Options{RulesFile: filepath.Join(t.TempDir(), "missing.yaml")})
	assert.ErrorContains(t, err, "routing rules")
	_, err = emailcrm.NewPipeline(store, &emailcrm.Options{Threading: &threading.Options{Key: []byte("short")}})
	assert.Error(t, err, "a key shorter than the minimum is refused")
	_, err = emailcrm.NewPipeline(nil, nil)
	assert.Error(t, err)

	p2, err := emailcrm.NewPipeline(store, &emailcrm.Options{Threading: &threading.Options{
		Key: []byte("0123456789abcdef0123"), ClosedPolicy: threading.PolicyNewLinked}})
	require.NoError(t, err)
	defer p2.Close()
	d := plugin(t, p2, "thread resolver").Detail
	assert.Contains(t, d, "signed Message-IDs and tokens on")
	assert.Contains(t, d, "closed cases: new_linked")
}

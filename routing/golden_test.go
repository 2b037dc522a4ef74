package routing_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

var update = flag.Bool("update", false, "rewrite testdata/mail/routes.golden")

// TestGolden routes the mails of testdata/mail with testdata/rules.yaml and
// compares the decisions with testdata/mail/routes.golden (go test -update
// rewrites it).
func TestGolden(t *testing.T) {
	r, err := routing.LoadFile("testdata/rules.yaml", nil)
	require.NoError(t, err)
	files, err := filepath.Glob("testdata/mail/*.eml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	mb := &mailcase.Mailbox{Name: "support", Address: "support@company.example", DefaultQueue: "general"}
	var b strings.Builder
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		m, err := mailcase.ParseMessage(raw, nil)
		require.NoError(t, err, f)
		got, err := r.Route(t.Context(), &mailcase.Delivery{Mailbox: mb, Message: m})
		require.NoError(t, err, f)
		fmt.Fprintf(&b, "%s\n  queue=%s priority=%s origin=%q rule=%s\n  fired=%v\n  scores=%v\n  reason=%s\n",
			filepath.Base(f), got.Queue, got.Priority, got.Origin, got.Rule, got.Fired, got.Scores, got.Reason)
	}
	golden := "testdata/mail/routes.golden"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), b.String(), "Route decisions differ from %s (run go test -update after checking)", golden)
}

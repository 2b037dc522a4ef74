package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

// run --once files the mails, starts their clocks from the Received time
// (an hour ago), and the alert process inside run mails the warning and
// the breach of each to the queue owner, once; sla status shows them and
// sla run --once finds nothing left.
func TestSLA_RunStatusAndAlerts(t *testing.T) {
	dir := t.TempDir()
	received := time.Now().Add(-time.Hour).UTC().Format(time.RFC1123Z)
	for i := range 2 {
		writeFile(t, dir, fmt.Sprintf("m%d.eml", i), fmt.Sprintf("Received: from mx.customer.example by mx.example.com; %s\r\n"+
			"From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer %d\r\nMessage-ID: <sla-%d@customer.example>\r\n\r\nIt jams.\r\n", received, i, i))
	}
	db := filepath.Join(t.TempDir(), "s.db")
	cfg := writeFile(t, t.TempDir(), "run.yaml", fmt.Sprintf(`store: sqlite://%s
mailboxes:
  - name: support
    address: support@example.com
    default_queue: general
    interval: 1h
    source: {type: dir, path: %s}
sla:
  interval: 1m
  lease: 2m
  calendars:
    berlin: {zone: Europe/Berlin, hours: {mon: ["09:00-17:00"]}}
  policies:
    standard:
      first_response: {warn: 10m, due: 30m}
      resolution: {warn: 20h, due: 24h}
    office:
      calendar: berlin
      first_response: {due: 4h, business: true}
  mailboxes: {support: standard}
  queue_owners: {general: lead@example.com}
`, db, dir))
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)

	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	sent, err := store.ListOutbox(t.Context(), &driver.OutboxListOptions{Kind: "notification"})
	require.NoError(t, err)
	store.Close()
	require.Len(t, sent, 4, "a warning and a breach of the first response of each case")
	for _, m := range sent {
		assert.Equal(t, []string{"lead@example.com"}, m.To)
	}

	stdout, stderr, code := runCLI(t, "sla", "status", "--config", cfg, "--json")
	require.Equal(t, exitOK, code, stderr)
	var st []slaCaseJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &st), stdout)
	require.Len(t, st, 2)
	for _, c := range st {
		require.Len(t, c.Timers, 2, "first response and resolution")
		byKind := map[driver.SLAKind]tracker.TimerStatus{}
		for _, tm := range c.Timers {
			byKind[tm.Kind] = tm
		}
		assert.Equal(t, "breached", byKind[driver.SLAFirstResponse].State)
		assert.True(t, byKind[driver.SLAFirstResponse].Warned)
		assert.Equal(t, "running", byKind[driver.SLAResolution].State)
		assert.WithinDuration(t, time.Now().Add(-time.Hour), byKind[driver.SLAResolution].StartedAt, 5*time.Second, "measured from the Received time")
	}
	stdout, stderr, code = runCLI(t, "sla", "status", "--config", cfg, st[0].Number)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "first_response")
	assert.Contains(t, stdout, "breached")

	stdout, stderr, code = runCLI(t, "sla", "run", "--config", cfg, "--once")
	require.Equal(t, exitOK, code, stderr)
	var r tracker.RunReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &r), stdout)
	assert.Zero(t, r.Claimed, "every alert fired in run")
}

// The claim lease of the alert process is read from sla.lease and
// checked by config check.
func TestSLA_LeaseConfig(t *testing.T) {
	cfg, err := parseConfig([]byte("store: mem://\nmailboxes:\n  - name: support\n    address: support@example.com\nsla:\n  lease: 2m\n  policies: {p: {first_response: {due: 1h}}}\n"))
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, cfg.SLA.Lease)
	bad := writeFile(t, t.TempDir(), "c.yaml", "store: mem://\nmailboxes:\n  - name: support\n    address: support@example.com\nsla:\n  lease: -5m\n  policies: {p: {first_response: {due: 1h}}}\n")
	_, stderr, code := runCLI(t, "config", "check", bad)
	assert.NotEqual(t, exitOK, code)
	assert.Contains(t, stderr, "sla.lease")
}

func TestSLA_ConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, sla, want string }{
		{"unknown calendar", "policies: {p: {calendar: nope, first_response: {due: 1h}}}", "unknown calendar"},
		{"warning after due", "policies: {p: {first_response: {warn: 2h, due: 1h}}}", "before the final time"},
		{"unknown policy", "policies: {p: {first_response: {due: 1h}}}\n  mailboxes: {support: q}", "unknown policy"},
		{"no unit", "policies: {p: {first_response: {due: 1h}}}\n  interval: 5", "duration"},
		{"negative lease", "policies: {p: {first_response: {due: 1h}}}\n  lease: -1m", "sla.lease"},
		{"lease below a second", "policies: {p: {first_response: {due: 1h}}}\n  lease: 10ms", "sla.lease"},
		{"bad owner", "policies: {p: {first_response: {due: 1h}}}\n  queue_owners: {general: nobody}", "not an address"},
		{"business without calendar", "policies: {p: {first_response: {due: 1h, business: true}}}", "names no calendar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "c.yaml", "store: mem://\nmailboxes:\n  - name: support\n    address: support@example.com\nsla:\n  "+tc.sla+"\n")
			_, stderr, code := runCLI(t, "sla", "status", "--config", cfg)
			assert.NotEqual(t, exitOK, code)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

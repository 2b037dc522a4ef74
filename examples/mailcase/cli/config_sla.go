package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/mailcase/sla"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

// slaConfig is the sla section of the configuration: business calendars,
// policies and which mailbox and queue use them (package sla), the alert
// process's interval and claim lease and the owners the alerts go to.
// Without policies there are no service-level clocks.
//
//	sla:
//	  interval: 5m
//	  lease: 5m
//	  calendars:
//	    berlin: {zone: Europe/Berlin, hours: {mon: ["09:00-17:00"], ...}, holidays: ["2026-12-25"]}
//	  policies:
//	    standard:
//	      calendar: berlin
//	      first_response: {warn: 2h, due: 4h, business: true}
//	      resolution: {warn: 20h, due: 24h}
//	  mailboxes: {support: standard}
//	  queues: {billing: standard}
//	  queue_owners: {billing: billing-lead@example.com}
//	  mailbox_owners: {support: support-lead@example.com}
type slaConfig struct {
	sla.Config `yaml:",inline"`
	// Interval is the pause between runs of the alert process; 0 means 5m.
	Interval time.Duration `yaml:"interval"`
	// Lease is how long an alert claimed by an alert process is held for
	// it: one that dies after claiming an alert and before queueing its
	// notification leaves it to the next process that claims after the
	// lease (tracker.AlertOptions.Lease). 0 means 5m; otherwise at least
	// 1s. Make it longer than mailing one batch of alerts takes.
	Lease time.Duration `yaml:"lease"`
	// QueueOwners and MailboxOwners map queue and mailbox names to the
	// address that gets their alerts.
	QueueOwners   map[string]string `yaml:"queue_owners"`
	MailboxOwners map[string]string `yaml:"mailbox_owners"`
	// From is the sender of the alerts; "" means the first mailbox's
	// address. LoopID names the installation in their loop header; ""
	// means "emailcrm".
	From   string `yaml:"from"`
	LoopID string `yaml:"loop_id"`
}

// enabled reports whether the section configures any policy.
func (c *slaConfig) enabled() bool { return len(c.Policies) > 0 }

// checkSLA validates the sla section (called by parseConfig).
func checkSLA(cfg *runConfig, lines configLines) error {
	c := &cfg.SLA
	if !c.enabled() {
		if len(c.Mailboxes)+len(c.Queues) > 0 {
			return lines.errAt("sla", "sla: mailboxes and queues name policies, but no policy is configured")
		}
		return nil
	}
	if _, err := sla.Compile(c.Config); err != nil {
		return lines.errAt("sla", "%v", err)
	}
	if c.Interval < 0 {
		return lines.errAt("sla.interval", "sla.interval: negative")
	}
	if c.Lease < 0 || (c.Lease > 0 && c.Lease < time.Second) {
		return lines.errAt("sla.lease", "sla.lease: %v: 0 (5m) or at least 1s", c.Lease)
	}
	for what, m := range map[string]map[string]string{"queue_owners": c.QueueOwners, "mailbox_owners": c.MailboxOwners} {
		for name, a := range m {
			if mailcase.NormalizeAddress(a) == "" {
				return lines.errAt("sla."+what, "sla.%s: %s: %q is not an address", what, name, a)
			}
		}
	}
	if c.From != "" && mailcase.NormalizeAddress(c.From) == "" {
		return lines.errAt("sla.from", "sla.from: %q is not an address", c.From)
	}
	if strings.ContainsAny(c.LoopID, "\r\n") {
		return lines.errAt("sla.loop_id", "sla.loop_id: one line")
	}
	return nil
}

// slaTracker returns the tracker of the configuration, nil when it has no
// policies.
func (c *runConfig) slaTracker(store *mailcase.Store, log *slog.Logger) (*tracker.Tracker, error) {
	if !c.SLA.enabled() {
		return nil, nil
	}
	pol, err := sla.Compile(c.SLA.Config)
	if err != nil {
		return nil, err
	}
	return tracker.New(store, pol, &tracker.Options{Logger: log})
}

// slaAlerter returns the alert process of the configuration, nil when it
// has no policies.
// onEvent, when set, receives the alerts as lifecycle events (sla.warning,
// sla.breach).
func (c *runConfig) slaAlerter(store *mailcase.Store, log *slog.Logger, onEvent func(context.Context, string, mailcase.CaseID, map[string]any)) (*tracker.Alerter, error) {
	if !c.SLA.enabled() {
		return nil, nil
	}
	if !store.CanSLA() || !store.CanOutbox() {
		return nil, errors.New("sla: the store keeps no service-level timers or no outbox (use an SQL store)")
	}
	from := c.SLA.From
	if from == "" && len(c.Mailboxes) > 0 {
		from = c.Mailboxes[0].Address
	}
	loop := c.SLA.LoopID
	if loop == "" {
		loop = "emailcrm"
	}
	n, err := outbox.NewNotifier(store, &outbox.NotifyOptions{From: mail.Address{Address: from}, LoopID: loop})
	if err != nil {
		return nil, fmt.Errorf("sla: %w", err)
	}
	return tracker.NewAlerter(store, n, &tracker.AlertOptions{Interval: c.SLA.Interval, Lease: c.SLA.Lease, Logger: log,
		QueueOwners: c.SLA.QueueOwners, MailboxOwners: c.SLA.MailboxOwners, OnEvent: onEvent})
}

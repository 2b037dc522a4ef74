package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

// eventsConfig is the events section: where lifecycle events go. Example:
//
//	events:
//	  webhooks:
//	    - name: crm
//	      url: https://crm.example.com/hooks/emailcrm
//	      secret_env: CRM_WEBHOOK_SECRET   # at least 16 bytes
//	      kinds: [case.*, reply.sent]      # none: every event
//	      timeout: 10s
//	  nats:
//	    url: nats://127.0.0.1:4222
//	    subject: emailcrm.events           # events go to <subject>.<kind>
//	    stream: EMAILCRM                   # created when missing
//	  delivery:
//	    workers: 1
//	    max_attempts: 10
//	    backoff_min: 1s
//	    backoff_max: 15m
//
// Events are recorded in the store's event log as soon as the section
// names a sink (by run, pipe, lmtp, import, quarantine retry, reply and
// the worklist and sla commands), and delivered by `mailcase run`.
type eventsConfig struct {
	Webhooks []webhookConfig `yaml:"webhooks"`
	NATS     natsConfig      `yaml:"nats"`
	Delivery deliveryConfig  `yaml:"delivery"`
}

type webhookConfig struct {
	Name string `yaml:"name"`
	// URL may carry a token; it is never logged.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the signing secret.
	SecretEnv string        `yaml:"secret_env"`
	Kinds     []string      `yaml:"kinds"`
	Timeout   time.Duration `yaml:"timeout"`
}

type natsConfig struct {
	URL     string   `yaml:"url"`
	Subject string   `yaml:"subject"`
	Stream  string   `yaml:"stream"`
	Kinds   []string `yaml:"kinds"`
}

type deliveryConfig struct {
	Workers     int           `yaml:"workers"`
	MaxAttempts int           `yaml:"max_attempts"`
	BackoffMin  time.Duration `yaml:"backoff_min"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

// enabled reports whether the section names a sink.
func (e *eventsConfig) enabled() bool { return len(e.Webhooks) > 0 || e.NATS.URL != "" }

// checkEvents validates the events section (secrets are read at run time:
// a missing variable is reported by run, not by config check).
func checkEvents(e *eventsConfig, lines configLines) error {
	seen := map[string]bool{}
	for i, w := range e.Webhooks {
		p := "events.webhooks." + strconv.Itoa(i)
		if w.Name == "" || seen[w.Name] {
			return lines.errAt(p, "events.webhooks: every webhook needs a unique name")
		}
		seen[w.Name] = true
		if w.SecretEnv == "" {
			return lines.errAt(p, "events.webhooks %s: secret_env names the variable of the signing secret", w.Name)
		}
		hook := events.Webhook{Name: w.Name, URL: w.URL, Secret: make([]byte, 16)}
		if err := hook.Check(); err != nil {
			return lines.errAt(p, "%v", err)
		}
		for _, k := range w.Kinds {
			if !knownKindPattern(k) {
				return lines.errAt(p, "events.webhooks %s: unknown event kind %q", w.Name, k)
			}
		}
	}
	for _, k := range e.NATS.Kinds {
		if !knownKindPattern(k) {
			return lines.errAt("events.nats", "events.nats: unknown event kind %q", k)
		}
	}
	if e.Delivery.Workers < 0 || e.Delivery.MaxAttempts < 0 || e.Delivery.BackoffMin < 0 || e.Delivery.BackoffMax < 0 {
		return lines.errAt("events.delivery", "events.delivery: negative value")
	}
	return nil
}

// knownKindPattern reports whether p matches some documented kind.
func knownKindPattern(p string) bool {
	for _, k := range events.Kinds() {
		if events.MatchKind([]string{p}, k) {
			return true
		}
	}
	return false
}

// eventWiring is what run needs of the events section.
type eventWiring struct {
	rec        *events.Recorder
	deliverers []*events.Deliverer
	nc         *nats.Conn
}

// Close closes the NATS connection and the recorder; a nil wiring has
// nothing to close.
func (w *eventWiring) Close() error {
	if w == nil {
		return nil
	}
	if w.nc != nil {
		w.nc.Close()
	}
	return w.rec.Close()
}

// recorder is the recorder of the pipelines' events, or nil without
// events (never a typed nil).
func (w *eventWiring) recorder() mailcase.EventRecorder {
	if w == nil {
		return nil
	}
	return w.rec
}

// onEvent is the recorder's OnEvent, or nil without events.
func (w *eventWiring) onEvent() func(context.Context, string, mailcase.CaseID, map[string]any) {
	if w == nil {
		return nil
	}
	return w.rec.OnEvent
}

// natsSinkName is the name of the NATS sink of the section in the log
// (events.NATSOptions.Name "" is "nats").
const natsSinkName = "nats:nats"

// recordOnlySink stands for a sink of the section in a command that records
// events but delivers none (pipe, lmtp, import, quarantine retry, reply,
// worklist): the recorder needs only its name and filter to append each
// event with its deliveries, which run sends.
type recordOnlySink struct {
	name  string
	kinds []string
}

func (r recordOnlySink) SinkName() string         { return r.name }
func (r recordOnlySink) Accepts(kind string) bool { return events.MatchKind(r.kinds, kind) }
func (r recordOnlySink) Send(context.Context, *events.Event, int) error {
	return errors.New("events: this command records events; mailcase run delivers them")
}

// recorder returns the wiring of a command that records events without
// delivering them (see recordOnlySink): the recorder appends each event to
// the store's log with a delivery per sink, for run to send; nothing
// connects and no secret is read. nil when the section names no sink.
func (e *eventsConfig) recorder(store *mailcase.Store, log *slog.Logger) (*eventWiring, error) {
	if !e.enabled() {
		return nil, nil
	}
	if !store.CanEventLog() {
		return nil, errors.New("events: the store keeps no event log (use an SQL store)")
	}
	var sinks []events.Sink
	for _, w := range e.Webhooks {
		sinks = append(sinks, recordOnlySink{name: (&events.Webhook{Name: w.Name}).SinkName(), kinds: w.Kinds})
	}
	if e.NATS.URL != "" {
		sinks = append(sinks, recordOnlySink{name: natsSinkName, kinds: e.NATS.Kinds})
	}
	rec, err := events.NewRecorder(store, &events.RecorderOptions{Sinks: sinks, Logger: log})
	if err != nil {
		return nil, err
	}
	return &eventWiring{rec: rec}, nil
}

// wireEvents builds the recorder and deliverers of the section; nil when
// it names no sink.
func (e *eventsConfig) wire(ctx context.Context, store *mailcase.Store, log *slog.Logger) (*eventWiring, error) {
	if !e.enabled() {
		return nil, nil
	}
	if !store.CanEventLog() {
		return nil, errors.New("events: the store keeps no event log (use an SQL store)")
	}
	var sinks []events.Sink
	for _, w := range e.Webhooks {
		secret := os.Getenv(w.SecretEnv)
		if len(secret) < 16 {
			return nil, fmt.Errorf("events: webhook %s: the variable %s must hold a secret of at least 16 bytes", w.Name, w.SecretEnv)
		}
		hook := &events.Webhook{Name: w.Name, URL: w.URL, Secret: []byte(secret), Kinds: w.Kinds, Timeout: w.Timeout}
		if err := hook.Check(); err != nil {
			return nil, err
		}
		sinks = append(sinks, hook)
	}
	out := &eventWiring{}
	if e.NATS.URL != "" {
		nc, err := nats.Connect(e.NATS.URL, nats.Name("emailcrm"))
		if err != nil {
			return nil, fmt.Errorf("events: connect to NATS: %w", err)
		}
		out.nc = nc
		sink, err := events.OpenNATSSink(ctx, nc, &events.NATSOptions{Subject: e.NATS.Subject, Stream: e.NATS.Stream, Kinds: e.NATS.Kinds})
		if err != nil {
			nc.Close()
			return nil, err
		}
		sinks = append(sinks, sink)
	}
	rec, err := events.NewRecorder(store, &events.RecorderOptions{Sinks: sinks, Logger: log})
	if err != nil {
		if out.nc != nil {
			out.nc.Close()
		}
		return nil, err
	}
	out.rec = rec
	host, _ := os.Hostname()
	for i := range max(e.Delivery.Workers, 1) {
		d, err := events.NewDeliverer(store, sinks, &events.DelivererOptions{
			Holder:      host + "-" + strconv.Itoa(os.Getpid()) + "-events-" + strconv.Itoa(i),
			MaxAttempts: e.Delivery.MaxAttempts, BackoffMin: e.Delivery.BackoffMin, BackoffMax: e.Delivery.BackoffMax, Logger: log})
		if err != nil {
			_ = out.Close()
			return nil, err
		}
		out.deliverers = append(out.deliverers, d)
	}
	return out, nil
}

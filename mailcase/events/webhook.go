package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Webhook is a Sink that POSTs each event, signed, to an HTTP endpoint
// (see the package comment for the request). Its fields must not change
// after it is handed to a Recorder or a Deliverer; it is safe for
// concurrent use.
type Webhook struct {
	// Name names the webhook in the log, logs and errors; required and
	// stable across restarts.
	Name string
	// URL is the endpoint (http or https); required. It is never logged.
	URL string
	// Secret keys the signature; required. It is never logged.
	Secret []byte
	// Kinds filters the events sent (see MatchKind); nil means all.
	Kinds []string
	// Timeout bounds one request; 0 means 10 seconds.
	Timeout time.Duration
	// Client sends the requests; nil means a client with no redirects
	// followed (a redirect is a failed attempt).
	Client *http.Client
	// Now is the clock of signatures; nil means time.Now.
	Now func() time.Time

	once   sync.Once
	client *http.Client // Client, or the webhook's own
}

var _ Sink = (*Webhook)(nil)

// httpClient returns Client, or a client of the webhook's own that follows
// no redirects and keeps enough idle connections for parallel sends.
func (w *Webhook) httpClient() *http.Client {
	w.once.Do(func() {
		if w.client = w.Client; w.client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 64
			w.client = &http.Client{Transport: tr,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
	})
	return w.client
}

// Check validates the webhook's settings.
func (w *Webhook) Check() error {
	if w.Name == "" {
		return errors.New("events: a webhook needs a name")
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("events: webhook %s: the URL must be an absolute http or https URL", w.Name)
	}
	if len(w.Secret) < 16 {
		return fmt.Errorf("events: webhook %s: the secret must have at least 16 bytes", w.Name)
	}
	return nil
}

// SinkName implements Sink.
func (w *Webhook) SinkName() string { return "webhook:" + w.Name }

// Accepts implements Sink.
func (w *Webhook) Accepts(kind string) bool { return MatchKind(w.Kinds, kind) }

// HTTPError is a webhook answer other than 2xx.
type HTTPError struct {
	Webhook    string
	Status     int
	RetryAfter time.Duration // from a Retry-After header; 0 when absent
}

func (e *HTTPError) Error() string {
	return "events: webhook " + e.Webhook + ": HTTP " + strconv.Itoa(e.Status)
}

// Permanent reports whether the receiver asked never to retry (410 Gone).
func (e *HTTPError) Permanent() bool { return e.Status == http.StatusGone }

// sendError hides the URL that net/http puts in its errors.
type sendError struct {
	webhook string
	err     error
}

func (e *sendError) Error() string {
	var ue *url.Error
	inner := e.err
	if errors.As(e.err, &ue) {
		inner = ue.Err
	}
	if errors.Is(e.err, context.DeadlineExceeded) {
		return "events: webhook " + e.webhook + ": timed out"
	}
	return "events: webhook " + e.webhook + ": " + inner.Error()
}

func (e *sendError) Unwrap() error { return e.err }

// Send implements Sink: one signed POST.
func (w *Webhook) Send(ctx context.Context, e *Event, attempt int) error {
	body, err := e.Body()
	if err != nil {
		return err
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return &sendError{webhook: w.Name, err: errors.New("bad request URL")}
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "emailcrm-webhook/1")
	req.Header.Set("Emailcrm-Event", e.Kind)
	req.Header.Set(IdempotencyHeader, e.ID)
	req.Header.Set("Emailcrm-Delivery-Attempt", strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(w.Secret, now(), body))
	resp, err := w.httpClient().Do(req)
	if err != nil {
		return &sendError{webhook: w.Name, err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	he := &HTTPError{Webhook: w.Name, Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		he.RetryAfter = time.Duration(s) * time.Second
	}
	return he
}

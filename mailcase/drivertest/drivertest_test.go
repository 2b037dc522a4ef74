package drivertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// The suite must catch broken drivers: each mutant below wraps memstore
// with one defect, runs the suite in a child process and must fail the
// named subtest. The "none" mutant must pass, which shows the wrapper
// itself is faithful.

const mutantEnv = "DRIVERTEST_MUTANT"

var mutants = []struct {
	name     string
	mustFail string // a subtest that must fail; "" means the suite must pass
	why      string // text the failure must contain, when set
}{
	{name: "none"},
	{name: "lookup-first-id", mustFail: "LookupThreadPrefersLastID"},
	{name: "create-not-idempotent", mustFail: "CreateCaseIdempotent"},
	{name: "append-not-idempotent", mustFail: "AppendEmailDuplicateIsNoop"},
	{name: "errorcode-unknown", mustFail: "GetCaseNotFound"},
	{name: "truncate-subject", mustFail: "UnicodeAndLongSubjects"},
	{name: "drop-attachment-data", mustFail: "LargeBodiesAndAttachments"},
	{name: "participants-unsorted", mustFail: "Participants"},
	{name: "ignore-no-participants", mustFail: "ParticipantsPlaceholderAndNoParticipants"},
	{name: "placeholder-participates", mustFail: "ParticipantsPlaceholderAndNoParticipants"},
	{name: "closedat-never-set", mustFail: "UpdateCaseCloseAndReopen"},
	{name: "list-oldest-first", mustFail: "ListCases"},
	{name: "state-unset-is-empty", mustFail: "State"},
	{name: "quarantine-truncates-raw", mustFail: "Quarantine"},
	{name: "double-quotes", mustFail: "InjectionShapedStrings"},
	{name: "outbound-not-indexed", mustFail: "LookupThreadFindsEveryFiledMail"},
	{name: "ignore-cancel", mustFail: "CanceledContext"},
	{name: "alias-returned-mail", mustFail: "NoAliasing"},
	{name: "lease-steal", mustFail: "LeaseConcurrentAcquire"},
	{name: "lease-never-expires", mustFail: "LeaseExpires"},
	// Keys in a PostgreSQL text column: NUL is refused. The failure must
	// say why, not only that CreateCase failed.
	{name: "text-column-keys", mustFail: "IdempotencyKeysAreBytes", why: "idempotency keys are opaque bytes, not text"},
}

func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per mutant in child processes")
	}
	if os.Getenv(mutantEnv) != "" {
		t.Skip("child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			run := "^TestMutant$" // the faithful wrapper runs the whole suite
			if m.mustFail != "" {
				run += "/^" + m.mustFail + "$"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if m.mustFail == "" {
				if err != nil {
					t.Fatalf("the faithful wrapper fails the suite: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passed a driver with defect %q", m.name)
			}
			if want := "--- FAIL: TestMutant/" + m.mustFail + " "; !strings.Contains(string(out), want) {
				t.Fatalf("defect %q: subtest %s did not fail; output:\n%s", m.name, m.mustFail, out)
			}
			if m.why != "" && !strings.Contains(string(out), m.why) {
				t.Fatalf("defect %q: the failure does not say %q; output:\n%s", m.name, m.why, out)
			}
		})
	}
}

// TestMutant runs the suite against the mutant named in the environment.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenDrivers")
	}
	drivertest.RunConformanceTests(t, func(context.Context, *testing.T) (drivertest.Harness, error) {
		return mutantHarness{name}, nil
	})
}

type mutantHarness struct{ mutate string }

func (h mutantHarness) MakeDriver(context.Context) (driver.CaseStore, error) {
	s, err := memstore.OpenStore(nil)
	if err != nil {
		return nil, err
	}
	d := s.Driver()
	return &mutant{
		CaseStore: d, Directory: d.(driver.Directory), Lister: d.(driver.Lister), Quarantiner: d.(driver.Quarantiner),
		StateStore: d.(driver.StateStore), DirectoryWriter: d.(driver.DirectoryWriter), Leaser: d.(driver.Leaser),
		mutate: h.mutate,
	}, nil
}

func (mutantHarness) Capabilities() drivertest.Capabilities {
	return drivertest.Capabilities{Lister: true, Quarantine: true, State: true, DirectoryWriter: true, Lease: true}
}

func (mutantHarness) Close() {}

// mutant forwards to memstore except for the defect it is named after.
type mutant struct {
	driver.CaseStore
	driver.Directory
	driver.Lister
	driver.Quarantiner
	driver.StateStore
	driver.DirectoryWriter
	driver.Leaser
	mutate string
	seq    atomic.Int64

	mu    sync.Mutex
	cache map[string][]byte // alias-returned-mail
}

func (m *mutant) unique(s string) string { return s + "#" + strconv.FormatInt(m.seq.Add(1), 10) }

func (m *mutant) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	if m.mutate == "lookup-first-id" {
		for _, id := range ids {
			if c, err := m.CaseStore.LookupThread(ctx, []string{id}); err == nil {
				return c, nil
			}
		}
	}
	return m.CaseStore.LookupThread(ctx, ids)
}

// errTextColumn is what PostgreSQL says about a NUL in a text column.
var errTextColumn = errors.New(`ERROR: invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)`)

// textColumn reports whether the "text-column-keys" mutant refuses key.
func (m *mutant) textColumn(key string) bool {
	return m.mutate == "text-column-keys" && strings.IndexByte(key, 0) >= 0
}

func (m *mutant) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if m.textColumn(in.Email.IdempotencyKey) {
		return errTextColumn
	}
	return m.CaseStore.RecordInteraction(ctx, in)
}

func (m *mutant) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	if m.textColumn(key) {
		return driver.Processed{}, errTextColumn
	}
	return m.CaseStore.LookupProcessed(ctx, key)
}

func (m *mutant) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	if m.textColumn(req.First.IdempotencyKey) {
		return driver.Case{}, errTextColumn
	}
	r := *req
	e := *req.First
	r.First = &e
	switch m.mutate {
	case "create-not-idempotent":
		e.IdempotencyKey = m.unique(e.IdempotencyKey)
	case "truncate-subject":
		r.Subject = r.Subject[:min(len(r.Subject), 255)]
	case "drop-attachment-data":
		e.Attachments = slices.Clone(e.Attachments)
		for i := range e.Attachments {
			e.Attachments[i].Data = nil
		}
	case "ignore-no-participants":
		e.NoParticipants = false
	}
	return m.CaseStore.CreateCase(ctx, &r)
}

func (m *mutant) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	if m.textColumn(e.IdempotencyKey) {
		return errTextColumn
	}
	c := *e
	switch {
	case m.mutate == "append-not-idempotent":
		c.IdempotencyKey = m.unique(c.IdempotencyKey)
	case m.mutate == "outbound-not-indexed" && e.Direction == driver.Outbound:
		c.MessageID = m.unique("hidden")
	case m.mutate == "ignore-no-participants":
		c.NoParticipants = false
	}
	return m.CaseStore.AppendEmail(ctx, id, &c)
}

func (m *mutant) ErrorCode(err error) driver.ErrorCode {
	if m.mutate == "errorcode-unknown" {
		return driver.Unknown
	}
	return m.CaseStore.ErrorCode(err)
}

func (m *mutant) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	if m.mutate == "ignore-cancel" {
		ctx = context.WithoutCancel(ctx)
	}
	c, err := m.CaseStore.GetCase(ctx, id)
	switch m.mutate {
	case "participants-unsorted":
		slices.Reverse(c.Participants)
	case "closedat-never-set":
		c.ClosedAt = time.Time{}
	}
	return c, err
}

func (m *mutant) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	c, err := m.CaseStore.UpdateCase(ctx, id, u)
	if m.mutate == "closedat-never-set" {
		c.ClosedAt = time.Time{}
	}
	return c, err
}

func (m *mutant) ListCases(ctx context.Context, opts *driver.ListOptions) ([]driver.Case, error) {
	cs, err := m.Lister.ListCases(ctx, opts)
	if m.mutate == "list-oldest-first" {
		slices.Reverse(cs)
	}
	return cs, err
}

func (m *mutant) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	in, err := m.Lister.ListInteractions(ctx, id)
	if m.mutate == "alias-returned-mail" {
		// Hand out the same attachment buffer every time, as a cache would.
		for i := range in {
			if in[i].Email != nil && len(in[i].Email.Attachments) > 0 {
				in[i].Email.Attachments[0].Data = m.cached(in[i].Email.IdempotencyKey, in[i].Email.Attachments[0].Data)
			}
		}
	}
	return in, err
}

func (m *mutant) cached(key string, b []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache == nil {
		m.cache = map[string][]byte{}
	}
	if c, ok := m.cache[key]; ok {
		return c
	}
	m.cache[key] = b
	return b
}

func (m *mutant) GetState(ctx context.Context, key string) ([]byte, error) {
	v, err := m.StateStore.GetState(ctx, key)
	if m.mutate == "state-unset-is-empty" && m.CaseStore.ErrorCode(err) == driver.NotFound {
		return nil, nil
	}
	return v, err
}

func (m *mutant) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	c := *q
	if m.mutate == "quarantine-truncates-raw" {
		c.Raw = c.Raw[:min(len(c.Raw), 65535)]
	}
	return m.Quarantiner.PutQuarantine(ctx, &c)
}

func (m *mutant) CreateContact(ctx context.Context, c *driver.NewContact) (driver.Contact, error) {
	n := *c
	switch m.mutate {
	case "double-quotes":
		n.Name = strings.ReplaceAll(n.Name, "'", "''")
	case "placeholder-participates":
		n.Placeholder = false // the placeholder's address then joins its cases
	}
	return m.Directory.CreateContact(ctx, &n)
}

func (m *mutant) Close() error { return m.CaseStore.Close() }

func (m *mutant) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	switch m.mutate {
	case "lease-steal":
		_, err := m.Leaser.AcquireLease(ctx, name, holder, ttl)
		return true, err
	case "lease-never-expires":
		ttl = time.Hour
	}
	return m.Leaser.AcquireLease(ctx, name, holder, ttl)
}

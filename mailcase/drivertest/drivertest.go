// Package drivertest is the conformance suite for case store drivers. Every driver's tests call RunConformanceTests; a driver that
// passes behaves like the reference store, mailcase/memstore, as far as the
// portable mailcase.Store and the pipeline can tell.
//
// An adapter's conformance test is three lines:
//
//	func TestConformance(t *testing.T) {
//		drivertest.RunConformanceTests(t, newHarness)
//	}
//
// with a harness such as (memstore's, complete):
//
//	type harness struct{}
//
//	func newHarness(context.Context, *testing.T) (drivertest.Harness, error) { return harness{}, nil }
//
//	func (harness) MakeDriver(context.Context) (driver.CaseStore, error) {
//		s, err := memstore.OpenStore(nil)
//		if err != nil {
//			return nil, err
//		}
//		return s.Driver(), nil
//	}
//
//	func (harness) Capabilities() drivertest.Capabilities {
//		return drivertest.Capabilities{Directory: true, Lister: true, Quarantine: true, State: true, DirectoryWriter: true}
//	}
//
//	func (harness) Close() {}
//
// A harness for a remote CRM starts a fake server (httptest) or points at a
// sandbox in MakeDriver, and releases it in Close. Each subtest makes a new
// harness and a new driver; drivers are closed through mailcase.Store.Close.
//
// The suite uses only the standard library, so third-party adapters can
// import it without new dependencies. It does not assume an empty store:
// every subtest uses fresh random keys, addresses and queue names, so a
// harness may share one database between subtests.
//
// Record IDs that a store never issued (a case ID typed by a user, a stale
// reference) must be NotFound, whatever their shape: "missing-3f2a" given
// to a store with integer keys is NotFound, not a syntax error. IDs the suite
// passes as references (ContactID, AccountID, ParentID, LinkedID) are ones
// the store issued.
//
// Optional interfaces (driver.Directory, driver.DirectoryWriter,
// driver.Lister, driver.Quarantiner, driver.StateStore, driver.Leaser,
// driver.RawKeeper, driver.EmailUpdater, driver.ReferenceFinder,
// driver.Records, driver.RecordBatcher, driver.Queues with
// driver.Worklist, driver.SLAStore, driver.EventLog, driver.Aser) are tested
// when the
// driver implements them; a harness that declares a capability its driver
// lacks fails the suite, once. The tests of an interface the driver lacks
// are not run, and the suite says so once per interface, in a skipped
// subtest named after it ("Lacks/driver.Lister") that lists them. Without a
// Lister the suite cannot read mails back, so round-trip checks of bodies
// and attachments are skipped (the filing itself is still checked); without
// a Directory, cases are created without contacts.
//
// Idempotency keys are shaped like the pipeline's, mailbox + "\x00" +
// Message-ID (and key + "\x00sender"), so a driver that keeps keys in a
// text column that rejects NUL fails, with a message that says so.
//
// A harness whose driver implements driver.Aser may implement AsTester to
// check its driver-specific types.
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Harness makes drivers for the suite.
type Harness interface {
	// MakeDriver returns a driver ready for use. The suite closes it (through
	// mailcase.Store.Close) at the end of each subtest.
	MakeDriver(ctx context.Context) (driver.CaseStore, error)
	// Capabilities declares the optional interfaces the driver implements.
	Capabilities() Capabilities
	// Close releases what the harness holds (servers, databases).
	Close()
}

// AsTester is an optional interface of a Harness whose driver implements
// driver.Aser. AsCheck is given a Store over the driver and err, an error
// that Store returned for a driver error (an append to a missing case), and
// returns an error when Store.As or Store.ErrorAs does not expose the
// driver's documented types.
type AsTester interface {
	AsCheck(s *mailcase.Store, err error) error
}

// HarnessMaker makes a Harness for one subtest.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Capabilities declares the optional interfaces of a driver. Each declared
// capability must be implemented; an implemented interface is tested even
// when it is not declared.
type Capabilities struct {
	Directory       bool // driver.Directory
	Aser            bool // driver.Aser
	Lister          bool // driver.Lister
	Quarantine      bool // driver.Quarantiner
	State           bool // driver.StateStore
	DirectoryWriter bool // driver.DirectoryWriter
	Lease           bool // driver.Leaser
	RawKeeper       bool // driver.RawKeeper
	EmailUpdater    bool // driver.EmailUpdater
	Outbox          bool // driver.Outbox
	OutboxFiler     bool // driver.OutboxFiler
	ReferenceFinder bool // driver.ReferenceFinder
	Records         bool // driver.Records
	RecordBatcher   bool // driver.RecordBatcher
	Worklist        bool // driver.Queues and driver.Worklist
	WorkItemOutbox  bool // driver.WorkItemOutbox
	SLA             bool // driver.SLAStore
	EventLog        bool // driver.EventLog
	EventFiler      bool // driver.EventFiler
}

// detect returns the capabilities d implements.
func detect(d driver.CaseStore) Capabilities {
	_, dir := d.(driver.Directory)
	_, as := d.(driver.Aser)
	_, l := d.(driver.Lister)
	_, q := d.(driver.Quarantiner)
	_, s := d.(driver.StateStore)
	_, w := d.(driver.DirectoryWriter)
	_, ls := d.(driver.Leaser)
	_, rk := d.(driver.RawKeeper)
	_, eu := d.(driver.EmailUpdater)
	_, ob := d.(driver.Outbox)
	_, of := d.(driver.OutboxFiler)
	_, rf := d.(driver.ReferenceFinder)
	_, rs := d.(driver.Records)
	_, rb := d.(driver.RecordBatcher)
	_, wq := d.(driver.Queues)
	_, wl := d.(driver.Worklist)
	_, sl := d.(driver.SLAStore)
	_, ev := d.(driver.EventLog)
	_, ef := d.(driver.EventFiler)
	_, wo := d.(driver.WorkItemOutbox)
	return Capabilities{Directory: dir, Aser: as, Lister: l, Quarantine: q, State: s, DirectoryWriter: w, Lease: ls, RawKeeper: rk,
		EmailUpdater: eu, Outbox: ob, OutboxFiler: of, ReferenceFinder: rf, Records: rs, RecordBatcher: rb, Worklist: wq && wl, SLA: sl, EventLog: ev,
		WorkItemOutbox: wo, EventFiler: ef}
}

// fixture is what each subtest works with: the raw driver, the portable
// Store over it and a random tag that makes keys and addresses unique.
type fixture struct {
	t   *testing.T
	h   Harness
	ctx context.Context
	d   driver.CaseStore
	s   *mailcase.Store
	tag string
	cap Capabilities
	n   int // counter for unique keys within the subtest
}

// RunConformanceTests runs the suite against drivers made by newHarness.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	caps, name := probe(t, newHarness)
	if t.Failed() {
		return
	}
	lacking := map[string][]string{} // interface -> tests not run
	var order []string
	for _, tc := range slices.Concat(tests, recordTests) {
		runs := true
		for _, n := range tc.needs {
			if !n.has(caps) {
				runs = false
				if lacking[n.iface] == nil {
					order = append(order, n.iface)
				}
				lacking[n.iface] = append(lacking[n.iface], tc.name)
			}
		}
		if runs {
			t.Run(tc.name, func(t *testing.T) { tc.run(setup(t, newHarness)) })
		}
	}
	for _, iface := range order {
		t.Run("Lacks/"+iface, func(t *testing.T) {
			t.Skipf("drivertest: the driver (%s) does not implement %s; not run: %s",
				name, iface, strings.Join(lacking[iface], ", "))
		})
	}
}

// probe makes one driver to learn its capabilities, checks them against
// the harness's declaration (failing t once on a mismatch) and closes it.
func probe(t *testing.T, newHarness HarnessMaker) (Capabilities, string) {
	t.Helper()
	ctx := t.Context()
	h, err := newHarness(ctx, t)
	if err != nil {
		t.Fatalf("drivertest: making harness: %v", err)
	}
	defer h.Close()
	d, err := h.MakeDriver(ctx)
	if err != nil {
		t.Fatalf("drivertest: making driver: %v", err)
	}
	defer func() { _ = d.Close() }()
	caps := detect(d)
	checkDeclared(t, h.Capabilities(), caps, d)
	return caps, fmt.Sprintf("%T", d)
}

// checkDeclared fails t when the harness declares a capability the driver
// lacks.
func checkDeclared(t *testing.T, decl, caps Capabilities, d driver.CaseStore) {
	t.Helper()
	for _, c := range []struct {
		name       string
		decl, have bool
	}{
		{"Directory", decl.Directory, caps.Directory},
		{"Aser", decl.Aser, caps.Aser},
		{"Lister", decl.Lister, caps.Lister},
		{"Quarantine", decl.Quarantine, caps.Quarantine},
		{"State", decl.State, caps.State},
		{"DirectoryWriter", decl.DirectoryWriter, caps.DirectoryWriter},
		{"Lease", decl.Lease, caps.Lease},
		{"RawKeeper", decl.RawKeeper, caps.RawKeeper},
		{"EmailUpdater", decl.EmailUpdater, caps.EmailUpdater},
		{"Outbox", decl.Outbox, caps.Outbox},
		{"OutboxFiler", decl.OutboxFiler, caps.OutboxFiler},
		{"ReferenceFinder", decl.ReferenceFinder, caps.ReferenceFinder},
		{"Records", decl.Records, caps.Records},
		{"RecordBatcher", decl.RecordBatcher, caps.RecordBatcher},
		{"Worklist", decl.Worklist, caps.Worklist},
		{"WorkItemOutbox", decl.WorkItemOutbox, caps.WorkItemOutbox},
		{"SLA", decl.SLA, caps.SLA},
		{"EventLog", decl.EventLog, caps.EventLog},
		{"EventFiler", decl.EventFiler, caps.EventFiler},
	} {
		if c.decl && !c.have {
			t.Fatalf("drivertest: harness declares capability %s but the driver (%T) does not implement it", c.name, d)
		}
	}
}

func setup(t *testing.T, newHarness HarnessMaker) *fixture {
	t.Helper()
	ctx := t.Context()
	h, err := newHarness(ctx, t)
	if err != nil {
		t.Fatalf("drivertest: making harness: %v", err)
	}
	t.Cleanup(h.Close)
	d, err := h.MakeDriver(ctx)
	if err != nil {
		t.Fatalf("drivertest: making driver: %v", err)
	}
	s := mailcase.NewStore(d, &mailcase.StoreOptions{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	t.Cleanup(func() { _ = s.Close() })
	caps := detect(d)
	checkDeclared(t, h.Capabilities(), caps, d)
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &fixture{t: t, h: h, ctx: ctx, d: d, s: s, tag: hex.EncodeToString(b[:]), cap: caps}
}

// test is one behaviour of the suite.
type test struct {
	name  string
	needs []need // optional interfaces the test needs; nil: always runs
	run   func(f *fixture)
}

// need is an optional interface a test needs.
type need struct {
	iface string // "driver.Lister"
	has   func(Capabilities) bool
}

var (
	needLister     = []need{{"driver.Lister", func(c Capabilities) bool { return c.Lister }}}
	needQuarantine = []need{{"driver.Quarantiner", func(c Capabilities) bool { return c.Quarantine }}}
	needState      = []need{{"driver.StateStore", func(c Capabilities) bool { return c.State }}}
	needDir        = []need{{"driver.Directory", func(c Capabilities) bool { return c.Directory }}}
	needDirectory  = append(slices.Clone(needDir), need{"driver.DirectoryWriter", func(c Capabilities) bool { return c.DirectoryWriter }})
	needLease      = []need{{"driver.Leaser", func(c Capabilities) bool { return c.Lease }}}
	needRaw        = []need{{"driver.RawKeeper", func(c Capabilities) bool { return c.RawKeeper }}}
	needUpdater    = []need{{"driver.EmailUpdater", func(c Capabilities) bool { return c.EmailUpdater }}}
	needReparse    = append(slices.Clone(needRaw), needUpdater...)
	needAser       = []need{{"driver.Aser", func(c Capabilities) bool { return c.Aser }}}
	needOutbox     = []need{{"driver.Outbox", func(c Capabilities) bool { return c.Outbox }}}
	needOutboxFile = append(slices.Clone(needOutbox), need{"driver.OutboxFiler", func(c Capabilities) bool { return c.OutboxFiler }})
	needRefs       = []need{{"driver.ReferenceFinder", func(c Capabilities) bool { return c.ReferenceFinder }}}
	needSLA        = []need{{"driver.SLAStore", func(c Capabilities) bool { return c.SLA }}}
	needEventLog   = []need{{"driver.EventLog", func(c Capabilities) bool { return c.EventLog }}}
	needEventFile  = append(slices.Clone(needEventLog), need{"driver.EventFiler", func(c Capabilities) bool { return c.EventFiler }})
)

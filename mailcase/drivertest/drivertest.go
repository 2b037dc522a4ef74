// Package drivertest is the conformance suite for case store drivers
// (M-6.2). Every driver's tests call RunConformanceTests; a driver that
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
//		return drivertest.Capabilities{Lister: true, Quarantine: true, State: true, DirectoryWriter: true}
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
// Optional interfaces (driver.Lister, driver.Quarantiner, driver.StateStore,
// driver.DirectoryWriter, driver.Leaser) are tested when the driver implements them; a
// harness that declares a capability its driver lacks fails the suite.
// Without a Lister the suite cannot read mails back, so round-trip checks of
// bodies and attachments are skipped (the filing itself is still checked).
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
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

// HarnessMaker makes a Harness for one subtest.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Capabilities declares the optional interfaces of a driver. Each declared
// capability must be implemented; an implemented interface is tested even
// when it is not declared.
type Capabilities struct {
	Lister          bool // driver.Lister
	Quarantine      bool // driver.Quarantiner
	State           bool // driver.StateStore
	DirectoryWriter bool // driver.DirectoryWriter
	Lease           bool // driver.Leaser
	RawKeeper       bool // driver.RawKeeper
	EmailUpdater    bool // driver.EmailUpdater
}

// detect returns the capabilities d implements.
func detect(d driver.CaseStore) Capabilities {
	_, l := d.(driver.Lister)
	_, q := d.(driver.Quarantiner)
	_, s := d.(driver.StateStore)
	_, w := d.(driver.DirectoryWriter)
	_, ls := d.(driver.Leaser)
	_, rk := d.(driver.RawKeeper)
	_, eu := d.(driver.EmailUpdater)
	return Capabilities{Lister: l, Quarantine: q, State: s, DirectoryWriter: w, Lease: ls, RawKeeper: rk, EmailUpdater: eu}
}

// fixture is what each subtest works with: the raw driver, the portable
// Store over it and a random tag that makes keys and addresses unique.
type fixture struct {
	t   *testing.T
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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, newHarness)
			if tc.needs != nil && !tc.needs(f.cap) {
				t.Skip("drivertest: the driver lacks the optional interface this test needs")
			}
			tc.run(f)
		})
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
	decl := h.Capabilities()
	for _, c := range []struct {
		name       string
		decl, have bool
	}{
		{"Lister", decl.Lister, caps.Lister},
		{"Quarantine", decl.Quarantine, caps.Quarantine},
		{"State", decl.State, caps.State},
		{"DirectoryWriter", decl.DirectoryWriter, caps.DirectoryWriter},
		{"Lease", decl.Lease, caps.Lease},
		{"RawKeeper", decl.RawKeeper, caps.RawKeeper},
		{"EmailUpdater", decl.EmailUpdater, caps.EmailUpdater},
	} {
		if c.decl && !c.have {
			t.Fatalf("drivertest: harness declares capability %s but the driver (%T) does not implement it", c.name, d)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &fixture{t: t, ctx: ctx, d: d, s: s, tag: hex.EncodeToString(b[:]), cap: caps}
}

// test is one behaviour of the suite.
type test struct {
	name  string
	needs func(Capabilities) bool // nil: always runs
	run   func(f *fixture)
}

func needLister(c Capabilities) bool     { return c.Lister }
func needQuarantine(c Capabilities) bool { return c.Quarantine }
func needState(c Capabilities) bool      { return c.State }
func needDirectory(c Capabilities) bool  { return c.DirectoryWriter }
func needLease(c Capabilities) bool      { return c.Lease }
func needRaw(c Capabilities) bool        { return c.RawKeeper }
func needUpdater(c Capabilities) bool    { return c.EmailUpdater }
func needReparse(c Capabilities) bool    { return c.RawKeeper && c.EmailUpdater }

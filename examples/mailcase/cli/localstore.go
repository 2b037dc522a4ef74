package cli

// localstore.go pairs a case store that lacks some of the optional roles a
// command needs (a CRM keeps cases, contacts and mail, but no outbox, source
// state, quarantine, leases or raw mail) with a local store that keeps them:
// the local_store key of the configuration, by default a SQLite file next
// to the configuration file.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// A localRole is an optional role of a store that the commands need and a
// CRM may not keep.
type localRole int

const (
	roleOutbox localRole = iota
	roleState
	roleQuarantine
	roleLeases
	roleRaw
	numLocalRoles
)

// String is the role as config check prints it.
func (r localRole) String() string {
	return [...]string{"outbox", "source state", "quarantine", "leases", "raw mail"}[r]
}

// hasRole reports whether d implements the driver interface of role r.
func hasRole(d driver.CaseStore, r localRole) bool {
	var ok bool
	switch r {
	case roleOutbox:
		_, ok = d.(driver.Outbox)
	case roleState:
		_, ok = d.(driver.StateStore)
	case roleQuarantine:
		_, ok = d.(driver.Quarantiner)
	case roleLeases:
		_, ok = d.(driver.Leaser)
	case roleRaw:
		_, ok = d.(driver.RawKeeper)
	}
	return ok
}

// missingRoles returns the roles d lacks.
func missingRoles(d driver.CaseStore) []localRole {
	var out []localRole
	for r := range numLocalRoles {
		if !hasRole(d, r) {
			out = append(out, r)
		}
	}
	return out
}

// localStoreFile is the default local store of a command run without a
// configuration file: this file in the working directory.
const localStoreFile = "mailcase-local.db"

// localStoreURL returns the local store of the configuration (cfg may be
// nil: a command run without a file): local_store when set, relative paths
// being relative to the file, else the SQLite file NAME.local.db next to
// the configuration file NAME.yaml, else mailcase-local.db in the working
// directory.
func (c *runConfig) localStoreURL() (string, error) {
	if c == nil {
		return "sqlite:" + localStoreFile, nil
	}
	if c.LocalStore == "" {
		if c.path == "" {
			return "sqlite:" + localStoreFile, nil
		}
		base := strings.TrimSuffix(filepath.Base(c.path), filepath.Ext(c.path))
		return normalizeStoreURL(filepath.Join(filepath.Dir(c.path), base+".local.db"))
	}
	s := c.LocalStore
	if rel, ok := strings.CutPrefix(s, "sqlite:"); ok && !strings.HasPrefix(rel, "/") {
		s = rel // sqlite:rel/path: relative to the file as well
	}
	if !hasScheme(s) && !filepath.IsAbs(s) && c.path != "" {
		s = filepath.Join(filepath.Dir(c.path), s)
	}
	u, err := normalizeStoreURL(s)
	if err != nil {
		return "", fmt.Errorf("local_store: %w", err)
	}
	return u, nil
}

// storeOpen says how openPairedStore opens the local store.
type storeOpen int

const (
	// openCreate creates a missing SQLite local store (commands that file
	// mail or queue replies).
	openCreate storeOpen = iota
	// openReadOnly leaves a missing SQLite local store missing: the roles
	// it would hold stay absent (commands that only read).
	openReadOnly
)

// openPairedStore opens the store storeURL and, when it lacks one of the
// local roles (outbox, source state, quarantine, leases, raw mail), pairs
// it with the local store of cfg (cfg may be nil; see localStoreURL): the
// returned store takes cases, contacts and listings from the main store and
// each role it lacks from the local one. A main store keeping every role is
// returned as it is and no local store is opened.
func openPairedStore(ctx context.Context, storeURL string, cfg *runConfig, mode storeOpen) (*mailcase.Store, error) {
	main, err := openStore(ctx, storeURL)
	if err != nil {
		return nil, err
	}
	if len(missingRoles(main.Driver())) == 0 {
		return main, nil
	}
	localURL, err := cfg.localStoreURL()
	if err != nil {
		_ = main.Close()
		return nil, usageError("%w", err)
	}
	if p, ok := sqlitePath(localURL); ok && mode == openReadOnly {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return main, nil
		}
	}
	local, err := openStore(ctx, localURL)
	if err != nil {
		_ = main.Close()
		return nil, fmt.Errorf("local store: %w", err)
	}
	s, err := pairStores(main, local)
	if err != nil {
		_ = main.Close()
		_ = local.Close()
		return nil, fmt.Errorf("local store %s: %w", redactURL(localURL), err)
	}
	return s, nil
}

// pairStores returns a store over main's driver with the local roles main
// lacks taken from local's driver; local must keep each of them. Closing
// the returned store closes both drivers; main and local are not to be
// used (nor closed) afterwards.
func pairStores(main, local *mailcase.Store) (*mailcase.Store, error) {
	crm, loc := main.Driver(), local.Driver()
	p := &pairedDriver{crm: crm, local: loc}
	for _, r := range missingRoles(crm) {
		if !hasRole(loc, r) {
			return nil, fmt.Errorf("it keeps no %s, which the main store lacks too", r)
		}
		p.fromLocal[r] = true
	}
	return mailcase.NewStore(p.withCRMRoles(), nil), nil
}

// The roles pairedDriver always offers, from one driver or the other.
var (
	_ driver.CaseStore   = (*pairedDriver)(nil)
	_ driver.Outbox      = (*pairedDriver)(nil)
	_ driver.StateStore  = (*pairedDriver)(nil)
	_ driver.Quarantiner = (*pairedDriver)(nil)
	_ driver.Leaser      = (*pairedDriver)(nil)
	_ driver.RawKeeper   = (*pairedDriver)(nil)
	_ driver.Aser        = (*pairedDriver)(nil)
)

// pairedDriver is a CRM driver with the local roles it lacks taken from a
// local driver. What the two cannot share is never shared: a mail is filed
// in the CRM and its raw copy kept in the local store, and queueing a reply
// is not atomic with the filing (no driver.OutboxFiler); a reply queued
// twice is kept once (the outbox's keys).
type pairedDriver struct {
	crm, local driver.CaseStore
	// fromLocal says which roles the local driver serves.
	fromLocal [numLocalRoles]bool
}

// roleDriver returns the driver serving role r.
func (p *pairedDriver) roleDriver(r localRole) driver.CaseStore {
	if p.fromLocal[r] {
		return p.local
	}
	return p.crm
}

// withCRMRoles returns p with the CRM's own optional interfaces (directory,
// directory writer, listing) exposed when the CRM has them, so that
// mailcase.Store sees the same CRM roles through the pairing as without it.
func (p *pairedDriver) withCRMRoles() driver.CaseStore {
	dir, hasDir := p.crm.(driver.Directory)
	dw, hasDW := p.crm.(driver.DirectoryWriter)
	l, hasL := p.crm.(driver.Lister)
	switch {
	case hasDir && hasDW && hasL:
		return struct {
			*pairedDriver
			driver.Directory
			driver.DirectoryWriter
			driver.Lister
		}{p, dir, dw, l}
	case hasDir && hasDW:
		return struct {
			*pairedDriver
			driver.Directory
			driver.DirectoryWriter
		}{p, dir, dw}
	case hasDir && hasL:
		return struct {
			*pairedDriver
			driver.Directory
			driver.Lister
		}{p, dir, l}
	case hasDW && hasL:
		return struct {
			*pairedDriver
			driver.DirectoryWriter
			driver.Lister
		}{p, dw, l}
	case hasDir:
		return struct {
			*pairedDriver
			driver.Directory
		}{p, dir}
	case hasDW:
		return struct {
			*pairedDriver
			driver.DirectoryWriter
		}{p, dw}
	case hasL:
		return struct {
			*pairedDriver
			driver.Lister
		}{p, l}
	}
	return p
}

// keepRaw keeps e.Raw in the local store under e's idempotency key before
// the CRM files e, and returns e without it (a copy: the caller's record is
// not changed). With raw mail kept by the CRM itself, e is returned as is.
func (p *pairedDriver) keepRaw(ctx context.Context, e *driver.Email) (*driver.Email, error) {
	if e == nil || len(e.Raw) == 0 || !p.fromLocal[roleRaw] {
		return e, nil
	}
	if err := p.local.(driver.RawKeeper).PutRaw(ctx, e.IdempotencyKey, e.Raw); err != nil {
		return nil, err
	}
	c := *e
	c.Raw = nil
	return &c, nil
}

func (p *pairedDriver) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	e, err := p.keepRaw(ctx, req.First)
	if err != nil {
		return driver.Case{}, err
	}
	r := *req
	r.First = e
	return p.crm.CreateCase(ctx, &r)
}

func (p *pairedDriver) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	return p.crm.GetCase(ctx, id)
}

func (p *pairedDriver) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	return p.crm.FindCaseByNumber(ctx, number)
}

func (p *pairedDriver) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	return p.crm.LookupThread(ctx, ids)
}

func (p *pairedDriver) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	e, err := p.keepRaw(ctx, e)
	if err != nil {
		return err
	}
	return p.crm.AppendEmail(ctx, id, e)
}

func (p *pairedDriver) AddNote(ctx context.Context, id driver.CaseID, n *driver.Note) error {
	return p.crm.AddNote(ctx, id, n)
}

func (p *pairedDriver) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	return p.crm.UpdateCase(ctx, id, u)
}

func (p *pairedDriver) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	return p.crm.CaseURL(ctx, id)
}

func (p *pairedDriver) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	e, err := p.keepRaw(ctx, in.Email)
	if err != nil {
		return err
	}
	c := *in
	c.Email = e
	return p.crm.RecordInteraction(ctx, &c)
}

func (p *pairedDriver) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	return p.crm.LookupProcessed(ctx, key)
}

// ErrorCode classifies with the CRM driver, then with the local one: each
// knows only its own errors and calls the others Unknown.
func (p *pairedDriver) ErrorCode(err error) driver.ErrorCode {
	if c := p.crm.ErrorCode(err); c != driver.Unknown {
		return c
	}
	return p.local.ErrorCode(err)
}

// Close closes both drivers.
func (p *pairedDriver) Close() error {
	return errors.Join(p.crm.Close(), p.local.Close())
}

// As and ErrorAs expose the CRM driver's types, then the local driver's.
func (p *pairedDriver) As(i any) bool {
	for _, d := range []driver.CaseStore{p.crm, p.local} {
		if a, ok := d.(driver.Aser); ok && a.As(i) {
			return true
		}
	}
	return false
}

func (p *pairedDriver) ErrorAs(err error, i any) bool {
	for _, d := range []driver.CaseStore{p.crm, p.local} {
		if a, ok := d.(driver.Aser); ok && a.ErrorAs(err, i) {
			return true
		}
	}
	return false
}

// The local roles, each served by the driver roleDriver names (pairStores
// checked that it implements the role).

func (p *pairedDriver) Enqueue(ctx context.Context, m *driver.OutboxMessage) (string, error) {
	return p.roleDriver(roleOutbox).(driver.Outbox).Enqueue(ctx, m)
}

func (p *pairedDriver) ClaimOutbox(ctx context.Context, holder string, limit int, ttl time.Duration) ([]driver.OutboxMessage, error) {
	return p.roleDriver(roleOutbox).(driver.Outbox).ClaimOutbox(ctx, holder, limit, ttl)
}

func (p *pairedDriver) FinishOutbox(ctx context.Context, id, holder string, r *driver.OutboxResult) error {
	return p.roleDriver(roleOutbox).(driver.Outbox).FinishOutbox(ctx, id, holder, r)
}

func (p *pairedDriver) SetOutboxStatus(ctx context.Context, id string, status driver.OutboxStatus, reason string) error {
	return p.roleDriver(roleOutbox).(driver.Outbox).SetOutboxStatus(ctx, id, status, reason)
}

func (p *pairedDriver) GetOutbox(ctx context.Context, id string) (driver.OutboxMessage, error) {
	return p.roleDriver(roleOutbox).(driver.Outbox).GetOutbox(ctx, id)
}

func (p *pairedDriver) FindOutbox(ctx context.Context, messageID string) (driver.OutboxMessage, error) {
	return p.roleDriver(roleOutbox).(driver.Outbox).FindOutbox(ctx, messageID)
}

func (p *pairedDriver) ListOutbox(ctx context.Context, opts *driver.OutboxListOptions) ([]driver.OutboxMessage, error) {
	return p.roleDriver(roleOutbox).(driver.Outbox).ListOutbox(ctx, opts)
}

func (p *pairedDriver) GetState(ctx context.Context, key string) ([]byte, error) {
	return p.roleDriver(roleState).(driver.StateStore).GetState(ctx, key)
}

func (p *pairedDriver) PutState(ctx context.Context, key string, value []byte) error {
	return p.roleDriver(roleState).(driver.StateStore).PutState(ctx, key, value)
}

func (p *pairedDriver) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	return p.roleDriver(roleQuarantine).(driver.Quarantiner).PutQuarantine(ctx, q)
}

func (p *pairedDriver) GetQuarantine(ctx context.Context, id string) (driver.QuarantineItem, error) {
	return p.roleDriver(roleQuarantine).(driver.Quarantiner).GetQuarantine(ctx, id)
}

func (p *pairedDriver) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	return p.roleDriver(roleQuarantine).(driver.Quarantiner).ListQuarantine(ctx, mailbox)
}

func (p *pairedDriver) DeleteQuarantine(ctx context.Context, id string) error {
	return p.roleDriver(roleQuarantine).(driver.Quarantiner).DeleteQuarantine(ctx, id)
}

func (p *pairedDriver) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return p.roleDriver(roleLeases).(driver.Leaser).AcquireLease(ctx, name, holder, ttl)
}

func (p *pairedDriver) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return p.roleDriver(roleLeases).(driver.Leaser).RenewLease(ctx, name, holder, ttl)
}

func (p *pairedDriver) ReleaseLease(ctx context.Context, name, holder string) error {
	return p.roleDriver(roleLeases).(driver.Leaser).ReleaseLease(ctx, name, holder)
}

func (p *pairedDriver) PutRaw(ctx context.Context, key string, raw []byte) error {
	return p.roleDriver(roleRaw).(driver.RawKeeper).PutRaw(ctx, key, raw)
}

func (p *pairedDriver) GetRaw(ctx context.Context, key string) ([]byte, error) {
	return p.roleDriver(roleRaw).(driver.RawKeeper).GetRaw(ctx, key)
}

func (p *pairedDriver) RawKeys(ctx context.Context, after string, limit int) ([]string, error) {
	return p.roleDriver(roleRaw).(driver.RawKeeper).RawKeys(ctx, after, limit)
}

// storeRoles describes, for config check, where each local role of the
// store URL comes from without opening anything: the stores of this
// program's schemes are known; another scheme's roles are known only when
// it opens.
func storeRoles(storeURL, localURL string) []string {
	scheme, _, _ := strings.Cut(storeURL, ":")
	main, loc := shownURL(storeURL), shownURL(localURL)
	switch scheme {
	case "mem", "sqlite", "postgres", "postgresql", "mysql":
		loc = "" // every role in the store
	case "salesforce", "dynamics":
	default:
		return []string{fmt.Sprintf("cases: %s; outbox, source state, quarantine, leases, raw mail: "+
			"%s for those it keeps, local store %s for the others", main, main, loc)}
	}
	out := []string{"cases, contacts, listing: " + main}
	for r := range numLocalRoles {
		from := main
		if loc != "" {
			from = "local store " + loc
		}
		out = append(out, fmt.Sprintf("%s: %s", r, from))
	}
	return out
}

// shownURL is a store URL for messages: its password redacted, and only its
// scheme when it does not parse (a ${VAR} reference in its user part).
func shownURL(s string) string {
	if _, err := url.Parse(s); err != nil {
		scheme, _, _ := strings.Cut(s, ":")
		return scheme + "://..."
	}
	return redactURL(s)
}

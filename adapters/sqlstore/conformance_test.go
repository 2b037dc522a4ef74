package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
)

// harness opens a new store (a new pool) on a database shared by the
// subtests of one dialect; the suite uses fresh keys in every subtest.
type harness struct{ url string }

func (h *harness) MakeDriver(ctx context.Context) (driver.CaseStore, error) {
	s, err := sqlstore.OpenURL(ctx, h.url, nil)
	if err != nil {
		return nil, err
	}
	return s.Driver(), nil
}

func (h *harness) Capabilities() drivertest.Capabilities {
	return drivertest.Capabilities{Directory: true, Aser: true, Lister: true, Quarantine: true, State: true, DirectoryWriter: true, RawKeeper: true, EmailUpdater: true, Outbox: true, Records: true, RecordBatcher: true, Worklist: true, WorkItemOutbox: true, SLA: true, EventLog: true, EventFiler: true}
}

func (h *harness) Close() {}

// AsCheck implements drivertest.AsTester: the pool and the dialect through
// As, errors through ErrorAs as *sqlstore.Error.
func (h *harness) AsCheck(s *mailcase.Store, err error) error {
	var db *sql.DB
	var d sqlstore.Dialect
	if !s.As(&db) || db == nil || !s.As(&d) {
		return errors.New("Store.As does not expose **sql.DB and *Dialect")
	}
	var se *sqlstore.Error
	if !s.ErrorAs(err, &se) {
		return fmt.Errorf("Store.ErrorAs(%v, **sqlstore.Error) = false", err)
	}
	return nil
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			u := d.url(t)
			drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
				return &harness{url: u}, nil
			})
		})
	}
}

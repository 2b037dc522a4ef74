package sqlstore_test

import (
	"context"
	"testing"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
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
	return drivertest.Capabilities{Lister: true, Quarantine: true, State: true, DirectoryWriter: true, RawKeeper: true, EmailUpdater: true}
}

func (h *harness) Close() {}

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

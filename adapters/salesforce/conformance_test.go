package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
)

// org is the fake org the tests run against, with the custom fields the
// package documentation asks the admin to create.
type org interface {
	URL() string
	Calls() int
}

type miniAdapter struct{ *miniOrg }

func (m miniAdapter) URL() string { return m.miniOrg.URL }

func newOrg(t testing.TB) org { return miniAdapter{newMiniOrg(t)} }

func testConfig(o org) *salesforce.Config {
	return &salesforce.Config{
		InstanceURL: o.URL(), ClientID: "client-id", ClientSecret: "client-secret",
		AutoAssign: "FALSE", AllowInsecureHTTP: true, AccountDomainField: "Domain__c", SlowDownAt: -1,
	}
}

func newDriver(t testing.TB, o org, mod func(*salesforce.Config)) *salesforce.Store {
	t.Helper()
	cfg := testConfig(o)
	if mod != nil {
		mod(cfg)
	}
	d, err := salesforce.NewDriver(cfg)
	require.NoError(t, err)
	return d
}

type harness struct{ org org }

func (h *harness) MakeDriver(context.Context) (driver.CaseStore, error) {
	return salesforce.NewDriver(testConfig(h.org))
}

func (h *harness) Capabilities() drivertest.Capabilities {
	return drivertest.Capabilities{Directory: true, DirectoryWriter: true, Aser: true, Lister: true}
}

func (h *harness) Close() {}

// AsCheck implements drivertest.AsTester.
func (h *harness) AsCheck(s *mailcase.Store, err error) error {
	var d *salesforce.Store
	var hc *http.Client
	if !s.As(&d) || d == nil || !s.As(&hc) {
		return errors.New("Store.As does not expose **salesforce.Store and **http.Client")
	}
	var ae *salesforce.APIError
	var le error = err
	if s.ErrorAs(le, &ae) {
		return fmt.Errorf("a local NotFound is not an *APIError, got %v", ae)
	}
	return nil
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &harness{org: newOrg(t)}, nil
	})
}

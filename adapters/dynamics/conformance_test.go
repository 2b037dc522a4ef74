package dynamics_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/dynamics"
	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
)

// newEnv starts a fake environment with the columns the package
// documentation asks the administrator to create.
func newEnv(t testing.TB, opts *dynamicstest.Options) *dynamicstest.Server {
	t.Helper()
	if opts == nil {
		opts = &dynamicstest.Options{}
	}
	if opts.ClientID == "" {
		opts.ClientID = "client-id"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "client-secret"
	}
	srv := dynamicstest.New(opts)
	t.Cleanup(srv.Close)
	for _, e := range []string{"incident", "email", "contact", "account"} {
		srv.AddAttribute(e, "emailcrm_data", 1048576)
	}
	srv.AddAttribute("systemuser", "firstname", 64)
	srv.AddAttribute("systemuser", "lastname", 64)
	return srv
}

func testConfig(srv *dynamicstest.Server) *dynamics.Config {
	return &dynamics.Config{
		InstanceURL: srv.URL(), TokenURL: srv.TokenURL(), ClientID: "client-id", ClientSecret: "client-secret",
		AllowInsecureHTTP: true, SlowDownAt: -1,
	}
}

func newDriver(t testing.TB, srv *dynamicstest.Server, mod func(*dynamics.Config)) *dynamics.Store {
	t.Helper()
	cfg := testConfig(srv)
	if mod != nil {
		mod(cfg)
	}
	d, err := dynamics.NewDriver(cfg)
	require.NoError(t, err)
	return d
}

type harness struct{ srv *dynamicstest.Server }

func (h *harness) MakeDriver(context.Context) (driver.CaseStore, error) {
	return dynamics.NewDriver(testConfig(h.srv))
}

func (h *harness) Capabilities() drivertest.Capabilities {
	return drivertest.Capabilities{Directory: true, DirectoryWriter: true, Aser: true, Lister: true}
}

func (h *harness) Close() {}

// AsCheck implements drivertest.AsTester.
func (h *harness) AsCheck(s *mailcase.Store, err error) error {
	var d *dynamics.Store
	var hc *http.Client
	if !s.As(&d) || d == nil || !s.As(&hc) {
		return errors.New("Store.As does not expose **dynamics.Store and **http.Client")
	}
	return nil
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
		return &harness{srv: newEnv(t, nil)}, nil
	})
}

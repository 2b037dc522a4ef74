package mailcase_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// The portable layer refuses a negative lease and a confirmation of no
// alert before the driver sees them.
func TestStore_SLALeaseArguments(t *testing.T) {
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.ClaimSLAAlerts(t.Context(), time.Now(), -time.Second, 10)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err), "negative lease: %v", err)
	got, err := s.ClaimSLAAlerts(t.Context(), time.Now(), 0, 10)
	require.NoError(t, err, "lease 0 claims permanently")
	assert.Empty(t, got)
	for _, a := range []*driver.SLAAlert{nil, {Alert: driver.SLAWarning, At: time.Now()}, {CaseID: "1", Alert: "other", At: time.Now()}, {CaseID: "1", Alert: driver.SLABreach}} {
		assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(s.ConfirmSLAAlert(t.Context(), a)), "ConfirmSLAAlert(%+v)", a)
	}
	err = s.ConfirmSLAAlert(t.Context(), &driver.SLAAlert{CaseID: "missing", Alert: driver.SLAWarning, At: time.Now()})
	assert.Equal(t, mailcase.NotFound, mailcase.Code(err), "a missing case: %v", err)
}

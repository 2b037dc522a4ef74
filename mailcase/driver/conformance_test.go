package driver_test

import (
	"context"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/drivertest"
)

// mapHarness runs the suite against the example driver: a driver written
// from the package documentation alone passes it.
type mapHarness struct{}

func (mapHarness) MakeDriver(context.Context) (driver.CaseStore, error) { return newMapstore(), nil }
func (mapHarness) Capabilities() drivertest.Capabilities                { return drivertest.Capabilities{} }
func (mapHarness) Close()                                               {}

func TestMapstoreConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(context.Context, *testing.T) (drivertest.Harness, error) {
		return mapHarness{}, nil
	})
}

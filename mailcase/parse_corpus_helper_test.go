package mailcase_test

import (
	"testing"

	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// generated returns a small deterministic generated corpus for tests.
func generated(t testing.TB) [][]byte {
	t.Helper()
	return mailcasetest.GenerateCorpus(400, 42)
}

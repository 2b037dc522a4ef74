//go:build !unix

package mailcase_test

import "time"

// plCPUTime is unavailable here; the CPU ratio is then not reported.
func plCPUTime() time.Duration { return 0 }

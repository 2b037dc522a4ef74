//go:build unix

package mailcase_test

import (
	"syscall"
	"time"
)

// plCPUTime returns the user+system CPU time of the process, so a
// benchmark can compare passes by CPU rather than wall time on a shared
// machine.
func plCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

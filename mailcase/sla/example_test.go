package sla_test

import (
	"fmt"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/sla"
)

// A 4-hour first-response target on Berlin office hours, for a mail
// received on Friday afternoon before the clocks go forward: due Monday
// 12:00 local time, paused while waiting on the customer.
func ExampleCalendar_Add() {
	week := []string{"09:00-17:00"}
	cal := sla.MustCalendar(sla.CalendarConfig{Zone: "Europe/Berlin",
		Hours: map[string][]string{"mon": week, "tue": week, "wed": week, "thu": week, "fri": week}})
	berlin := cal.Location()
	received := time.Date(2026, 3, 27, 16, 0, 0, 0, berlin)
	tm := sla.NewTimer(driver.SLAMailbox, driver.SLAFirstResponse, "support", "standard",
		sla.Target{Warn: 2 * time.Hour, Due: 4 * time.Hour, Business: true}, cal, "berlin", received)
	fmt.Println("warn:", tm.WarnAt.In(berlin).Format("Mon 15:04 MST"))
	fmt.Println("due: ", tm.DueAt.In(berlin).Format("Mon 15:04 MST"))

	tm = tm.Pause(cal, time.Date(2026, 3, 30, 9, 30, 0, 0, berlin))  // waiting on the customer
	tm = tm.Resume(cal, time.Date(2026, 3, 31, 14, 0, 0, 0, berlin)) // the customer answered
	fmt.Println("counted:", tm.Elapsed)
	fmt.Println("due now:", tm.DueAt.In(berlin).Format("Mon 15:04 MST"))
	// Output:
	// warn: Mon 10:00 CEST
	// due:  Mon 12:00 CEST
	// counted: 1h30m0s
	// due now: Tue 16:30 CEST
}

package sla_test

import (
	"testing"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/sla"
)

// BenchmarkCalendarAdd: a 4-hour business target from Friday afternoon
// (across the weekend) on Berlin office hours with a lunch break.
func BenchmarkCalendarAdd(b *testing.B) {
	spans := []string{"09:00-12:00", "13:00-17:00"}
	cal := sla.MustCalendar(sla.CalendarConfig{Zone: "Europe/Berlin", Holidays: []string{"2026-12-25"},
		Hours: map[string][]string{"mon": spans, "tue": spans, "wed": spans, "thu": spans, "fri": spans}})
	start := time.Date(2026, 3, 27, 15, 0, 0, 0, time.UTC)
	for b.Loop() {
		_ = cal.Add(start, 4*time.Hour)
	}
}

// BenchmarkCalendarBetween: the business time of one month.
func BenchmarkCalendarBetween(b *testing.B) {
	spans := []string{"09:00-12:00", "13:00-17:00"}
	cal := sla.MustCalendar(sla.CalendarConfig{Zone: "America/New_York",
		Hours: map[string][]string{"mon": spans, "tue": spans, "wed": spans, "thu": spans, "fri": spans}})
	a := time.Date(2026, 10, 15, 10, 0, 0, 0, time.UTC)
	for b.Loop() {
		_ = cal.Between(a, a.Add(30*24*time.Hour))
	}
}

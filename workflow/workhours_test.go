package workflow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/klantbeeld/klantbeeld/workflow"
)

func TestEaster(t *testing.T) {
	for year, want := range map[int]string{
		2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28",
		2030: "2030-04-21", 2038: "2038-04-25", 2285: "2285-03-22",
	} {
		assert.Equal(t, want, workflow.Easter(year).Format(time.DateOnly), "%d", year)
	}
}

func TestDutchHolidays(t *testing.T) {
	holidays := map[string]bool{
		"2026-01-01": true,  // Nieuwjaarsdag
		"2026-04-03": false, // Goede Vrijdag: terms run
		"2026-04-06": true,  // Paasmaandag
		"2026-04-27": true,  // Koningsdag, a Monday
		"2025-04-26": true,  // Koningsdag on the 26th: the 27th was a Sunday
		"2025-04-27": false,
		"2026-05-05": true, // Bevrijdingsdag, not a lustrum year: still a holiday
		"2026-05-14": true, // Hemelvaartsdag
		"2026-05-25": true, // Pinkstermaandag
		"2026-12-25": true,
		"2026-12-26": true,
		"2026-12-24": false,
		"2026-06-01": false,
	}
	for day, want := range holidays {
		d, err := time.Parse(time.DateOnly, day)
		assert.NoError(t, err)
		assert.Equal(t, want, workflow.DutchHoliday(d.Year(), d.Month(), d.Day()), day)
	}
}

func TestWorkingTime(t *testing.T) {
	cal := workflow.DutchCalendar()
	ams := cal.Location
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ams)
		assert.NoError(t, err)
		return v
	}
	tests := []struct {
		from string
		d    time.Duration
		want string
	}{
		{"2026-11-16 10:00", 48 * time.Hour, "2026-11-18 10:00"}, // Monday → Wednesday
		{"2026-11-19 10:00", 48 * time.Hour, "2026-11-23 10:00"}, // Thursday → Monday: the weekend skipped
		{"2026-11-21 10:00", 48 * time.Hour, "2026-11-25 00:00"}, // from a Saturday: Monday and Tuesday
		{"2026-12-23 15:00", 48 * time.Hour, "2026-12-28 15:00"}, // Christmas and a weekend
		{"2026-04-30 09:00", 24 * time.Hour, "2026-05-01 09:00"},
		{"2026-05-04 12:00", 24 * time.Hour, "2026-05-06 12:00"}, // Bevrijdingsdag
		{"2026-04-02 12:00", 24 * time.Hour, "2026-04-03 12:00"}, // through Goede Vrijdag
		{"2026-04-03 12:00", 24 * time.Hour, "2026-04-07 12:00"}, // past Easter
		{"2026-11-16 10:00", 0, "2026-11-16 10:00"},
	}
	for _, tc := range tests {
		got := cal.Add(at(tc.from), tc.d)
		assert.Equal(t, at(tc.want).UTC(), got.UTC(), "%s + %s", tc.from, tc.d)
	}
	// The change to winter time falls on a Sunday, which does not count.
	assert.Equal(t, at("2026-10-27 01:00").UTC(), cal.Add(at("2026-10-23 00:00"), 49*time.Hour).UTC())
}

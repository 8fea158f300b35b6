package workflow

import (
	"time"
	_ "time/tzdata" // Europe/Amsterdam on machines without a zone database
)

// Calendar says which days are working days. The zero value is not usable;
// use DutchCalendar.
type Calendar struct {
	// Location decides where a day begins and ends.
	Location *time.Location
	// Holiday reports whether the date (year, month, day in Location) is
	// a public holiday on which terms do not run.
	Holiday func(year int, month time.Month, day int) bool
}

// DutchCalendar is the calendar of the Algemene termijnenwet (art. 3), the
// Dutch law on how statutory terms are extended past weekends and public
// holidays, in Europe/Amsterdam: Saturdays and Sundays, Nieuwjaarsdag,
// Paasmaandag, Koningsdag (27 April, or 26 April when the 27th is a
// Sunday), Bevrijdingsdag (5 May, every year: the law names it without
// the lustrum condition that applies to days off in collective labour
// agreements), Hemelvaartsdag, Pinkstermaandag and the two Christmas days.
// Eerste Paasdag and Eerste Pinksterdag are Sundays anyway. Goede Vrijdag
// is not a general holiday (the law does not list it; most municipal
// offices are open), so terms run on it.
func DutchCalendar() Calendar {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		loc = time.UTC
	}
	return Calendar{Location: loc, Holiday: DutchHoliday}
}

// DutchHoliday reports whether the date is a public holiday under the
// Algemene termijnenwet (see DutchCalendar).
func DutchHoliday(year int, month time.Month, day int) bool {
	switch {
	case month == time.January && day == 1,
		month == time.May && day == 5,
		month == time.December && (day == 25 || day == 26):
		return true
	case month == time.April && (day == 26 || day == 27):
		// Koningsdag is the 27th, moved to the 26th when the 27th is a Sunday.
		sunday27 := time.Date(year, time.April, 27, 12, 0, 0, 0, time.UTC).Weekday() == time.Sunday
		return day == 27 && !sunday27 || day == 26 && sunday27
	}
	easter := Easter(year)
	d := time.Date(year, month, day, 12, 0, 0, 0, time.UTC)
	for _, offset := range []int{1, 39, 50} { // Paasmaandag, Hemelvaartsdag, Pinkstermaandag
		if easter.AddDate(0, 0, offset).Equal(d) {
			return true
		}
	}
	return false
}

// Easter is Easter Sunday of year (Gregorian calendar; the anonymous
// algorithm of Meeus, Jones and Butcher), at noon UTC.
func Easter(year int) time.Time {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(year, time.Month(month), day, 12, 0, 0, 0, time.UTC)
}

// WorkingDay reports whether t's date (in the calendar's location) is a
// working day.
func (c Calendar) WorkingDay(t time.Time) bool {
	t = t.In(c.Location)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	y, m, d := t.Date()
	return c.Holiday == nil || !c.Holiday(y, m, d)
}

// Add returns the moment that lies d of working time after t: time on
// weekends and holidays does not count, every hour of a working day does
// (48 working hours are two working days). A start on a day off counts
// from the next working day's midnight.
func (c Calendar) Add(t time.Time, d time.Duration) time.Time {
	t = t.In(c.Location)
	for i := 0; i < 100000; i++ {
		y, m, day := t.Date()
		next := time.Date(y, m, day+1, 0, 0, 0, 0, c.Location)
		if !c.WorkingDay(t) {
			t = next
			continue
		}
		left := next.Sub(t)
		if d <= left {
			return t.Add(d)
		}
		d -= left
		t = next
	}
	return t
}

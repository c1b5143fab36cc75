package config

import (
	"testing"
	"time"
)

// TestParseSchedule: the one cron guard that validation and the digest
// scheduler share turns cron's panics into errors.
func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in, err string
	}{
		{"0 8 * * *", ""},
		{"@every 1h", ""},
		{"CRON_TZ=Europe/Berlin 0 8 * * *", ""},
		{"TZ=UTC @daily", ""},
		{"CRON_TZ=Europe/Berlin", "no schedule after the time zone"},
		{"TZ=", "no schedule after the time zone"},
		{"CRON_TZ=", "no schedule after the time zone"},
		{"0 8 * *", "expected exactly 5 fields, found 4: [0 8 * *]"},
		{"", "empty spec string"},
	}
	for _, tt := range tests {
		sched, err := ParseSchedule(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("ParseSchedule(%q) error %q, want %q", tt.in, got, tt.err)
		}
		if (sched == nil) == (err == nil) {
			t.Errorf("ParseSchedule(%q) = %v, %v: want exactly one of a schedule and an error", tt.in, sched, err)
		}
	}
	sched, err := ParseSchedule("CRON_TZ=UTC 0 8 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	if got, want := sched.Next(from), time.Date(2024, 1, 2, 8, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
}

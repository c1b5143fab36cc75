package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// cronParser accepts standard 5-field schedules, descriptors (@daily,
// @every 1h) and a CRON_TZ= (or TZ=) prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a digest schedule as validation accepts it and the
// digest scheduler runs it: standard five fields, descriptors (@daily,
// @every 1h) and a CRON_TZ= (or TZ=) prefix. It never panics: cron v3 slices
// past the end of a "CRON_TZ=zone" with nothing after it, so that case is
// caught first, and any other panic inside cron becomes an error.
func ParseSchedule(s string) (sched cron.Schedule, err error) {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		if !strings.Contains(s, " ") {
			return nil, errors.New("no schedule after the time zone")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cannot parse: %v", r)
		}
	}()
	return cronParser.Parse(s)
}

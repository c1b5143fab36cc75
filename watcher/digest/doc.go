// Package digest sends scheduled summaries of the watched accounts.
//
// A digest (config `digests:`) fires on a cron schedule — five fields
// "minute hour day-of-month month weekday" or a descriptor such as @daily,
// optionally after CRON_TZ=Europe/Berlin — and reports, per account, the
// equity, margin ratio, effective leverage, funding paid in 24h and
// drawdown, the open positions nearest to liquidation first, and the alerts
// of the last 24 hours.
//
// The package has two halves that meet only in the daemon:
//
//   - Scheduler decides when: it runs one loop per digest that sleeps until
//     the next fire time and calls back. Schedules without CRON_TZ= are in
//     UTC, never the host's local zone, so a digest does not move when the
//     server's time zone is changed.
//   - Render decides what: a pure function from the latest metrics and the
//     recorded alert history to one notification (Kind notifiers.KindDigest)
//     whose Summary is the whole plain-text digest, so every notifier can
//     deliver it and tests can compare it with exact text.
//
// Times in a digest are shown in the schedule's CRON_TZ zone (see
// Location), else in UTC.
package digest

// Package service speaks the sd_notify(3) protocol to systemd for the
// daemon's Type=notify unit (systemd/marginwatch.service): readiness, reload
// and shutdown notices, a free-form status line, and the watchdog.
//
// Every function is a no-op that returns nil when NOTIFY_SOCKET is unset, so
// the daemon calls them unconditionally: in a terminal, under another
// supervisor or in tests nothing is sent.
//
// The watchdog is only useful when its pings prove the daemon works, not
// merely that a goroutine is scheduled. [Watchdog] therefore pings only while
// the caller's alive function reports that the main loop completes cycles; a
// wedged loop stops the pings and systemd restarts the service once
// WatchdogSec= has passed without one.
package service

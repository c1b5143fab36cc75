package watcher

import (
	"errors"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/notifiers"
)

// TestAckBuiltinAlertNotAckable: a built-in alert cannot be acked, and
// says so with ErrNotAckable (the admin API answers 409, not 500).
func TestAckBuiltinAlertNotAckable(t *testing.T) {
	w, _ := newTestWatcher(t, repeatConfig, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(&scripted{liq: 88000})})
	now := w.now()
	st := selfState(reloadKey, notifiers.Critical, now, now)
	w.self[reloadKey] = st
	_, err := w.Ack(st.ID, "me", "")
	if !errors.Is(err, ErrNotAckable) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), st.ID+" is the built-in alert "+ConfigReloadFailed+", which cannot be acknowledged") {
		t.Errorf("Ack of a built-in alert: %v", err)
	}
}

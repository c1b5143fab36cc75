package notifiertest

import (
	"maps"
	"sync"
)

// Threads is an in-memory notifiers.Threads for tests.
type Threads struct {
	// Err, when set, makes SetThread fail with it (a full disk).
	Err error

	mu   sync.Mutex
	refs map[string]string // "notifier/incident" → ref
}

// Thread returns the reference stored for the incident, if any.
func (m *Threads) Thread(notifier, incident string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref, ok := m.refs[notifier+"/"+incident]
	return ref, ok
}

// SetThread stores ref for the incident, or fails with Err.
func (m *Threads) SetThread(notifier, incident, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	if m.refs == nil {
		m.refs = map[string]string{}
	}
	m.refs[notifier+"/"+incident] = ref
	return nil
}

// Refs returns a copy of what is stored, keyed "notifier/incident".
func (m *Threads) Refs() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.refs)
}

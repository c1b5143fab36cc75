package telegram

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/marginwatch/marginwatch/notifiers"
)

// manyAlerts are 60 alerts of ~900 characters of HTML each: 4 fit one
// message, so together they need 15.
func manyAlerts() []notifiers.Alert {
	var alerts []notifiers.Alert
	for i := range 60 {
		a := alert(notifiers.Warning, notifiers.Firing, notifiers.KindFiring, fmt.Sprintf("id%02d", i))
		a.Rule = fmt.Sprintf("rule-%02d", i)
		a.Summary = fmt.Sprintf("alert %02d: <%s>", i, strings.Repeat("&", 150))
		a.Runbook = "cut size"
		alerts = append(alerts, a)
	}
	return alerts
}

// TestSplitter: Split gives the parts the dispatcher sends one Notify each;
// each part is exactly one message, the same one Notify of all the alerts
// sends (less the "(k/n)" footer), and together the parts are the alerts,
// in order, the same way every time.
func TestSplitter(t *testing.T) {
	alerts := manyAlerts()
	w := &noWait{}
	n, api := newTest(t, nil, Options{Wait: w.wait})
	parts := n.Split(alerts)
	if len(parts) != 15 {
		t.Fatalf("Split gave %d parts, want 15", len(parts))
	}
	var joined []notifiers.Alert
	for _, p := range parts {
		if len(p) == 0 {
			t.Fatal("an empty part")
		}
		joined = append(joined, p...)
	}
	if !reflect.DeepEqual(joined, alerts) {
		t.Fatal("the parts joined are not the alerts, in order")
	}
	if again := n.Split(manyAlerts()); !reflect.DeepEqual(again, parts) {
		t.Error("Split is not deterministic")
	}

	for i, p := range parts {
		before := len(api.Delivered())
		if retry, err := n.Notify(context.Background(), p...); err != nil {
			t.Fatalf("part %d: Notify: retry=%v err=%v", i+1, retry, err)
		}
		if got := len(api.Delivered()) - before; got != 1 {
			t.Errorf("part %d: Notify sent %d messages, want 1", i+1, got)
		}
	}
	if len(w.waits) != 0 {
		t.Errorf("Notify of one part paused %d times", len(w.waits))
	}
	single := api.Delivered()

	// Notify of all the alerts still sends every part, as today.
	if retry, err := n.Notify(context.Background(), alerts...); err != nil {
		t.Fatalf("Notify all: retry=%v err=%v", retry, err)
	}
	all := api.Delivered()[len(single):]
	if len(all) != 15 {
		t.Fatalf("Notify of all sent %d messages, want 15", len(all))
	}
	for k := range all {
		footer := fmt.Sprintf("\n\n<i>(%d/15)</i>", k+1)
		if strings.TrimSuffix(all[k], footer) != single[k] {
			t.Errorf("message %d differs between Notify of all and Notify of its part:\n%s\n---\n%s", k+1, all[k], single[k])
		}
		if strings.Contains(single[k], "<i>(") {
			t.Errorf("a part sent on its own has a footer: %q", single[k])
		}
	}
}

// Each part fits a message whatever the alerts' sizes, and an alert too
// long for one message is a part of its own, clipped.
func TestSplitterSizes(t *testing.T) {
	huge := strings.Repeat("<&>😀", 3000)
	var alerts []notifiers.Alert
	for i := range 40 {
		a := alert(notifiers.Critical, notifiers.Firing, notifiers.KindFiring, fmt.Sprint(i))
		a.Summary = strings.Repeat("x", (i*397)%1600)
		if i%7 == 3 {
			a.Summary, a.Runbook, a.Rule = huge, huge, huge
		}
		alerts = append(alerts, a)
	}
	var n Notifier
	parts := n.Split(alerts)
	total := 0
	for i, p := range parts {
		total += len(p)
		msgs := split(p)
		if len(msgs) != 1 {
			t.Fatalf("part %d renders as %d messages", i+1, len(msgs))
		}
		if l := utf16Len(msgs[0].text); l > maxMessage {
			t.Errorf("part %d is %d UTF-16 units", i+1, l)
		}
		if _, err := parseHTML(msgs[0].text); err != nil {
			t.Errorf("part %d: Telegram would reject it: %v", i+1, err)
		}
	}
	if total != len(alerts) {
		t.Errorf("parts hold %d alerts, want %d", total, len(alerts))
	}
	if got := n.Split(nil); len(got) != 0 {
		t.Errorf("Split(nil) = %v", got)
	}
}

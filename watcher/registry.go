package watcher

import (
	"fmt"
	"io"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/simulated"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/console"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// NewExchange builds the exchange adapter of one account. Every adapter is
// registered here and nowhere else.
func NewExchange(a config.Account, now func() time.Time) (exchanges.Exchange, error) {
	switch a.Exchange {
	case "simulated":
		return simulated.New(a.Scenario, now)
	default:
		return nil, fmt.Errorf("account %q: exchange %q is not supported by this build", a.Name, a.Exchange)
	}
}

// NewNotifier builds one notifier. Every notifier type is registered here
// and nowhere else. Console output goes to stdout, in colour when color is set.
func NewNotifier(n config.Notifier, stdout io.Writer, color bool) (notifiers.Notifier, error) {
	switch n.Type {
	case "console":
		return console.New(stdout, color), nil
	default:
		return nil, fmt.Errorf("notifier %q: type %q is not supported by this build", n.Name, n.Type)
	}
}

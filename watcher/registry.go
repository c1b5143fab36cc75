package watcher

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance"
	"github.com/marginwatch/marginwatch/exchanges/bybit"
	"github.com/marginwatch/marginwatch/exchanges/hyperliquid"
	"github.com/marginwatch/marginwatch/exchanges/simulated"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/notifiers/console"
	"github.com/marginwatch/marginwatch/notifiers/email"
	"github.com/marginwatch/marginwatch/notifiers/slack"
	"github.com/marginwatch/marginwatch/notifiers/telegram"
	"github.com/marginwatch/marginwatch/notifiers/webhook"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/delivery"
)

// NewExchange builds the exchange adapter of one account. Every adapter is
// registered here and nowhere else.
func NewExchange(a config.Account, now func() time.Time, logger *slog.Logger) (exchanges.Exchange, error) {
	switch a.Exchange {
	case "simulated":
		return simulated.New(a.Scenario, now, logger)
	case binance.USDM, binance.COINM:
		return binance.New(a, binance.Options{Now: now, Logger: logger})
	case bybit.Name:
		return bybit.New(a, bybit.Options{Now: now, Logger: logger})
	case hyperliquid.Name:
		return hyperliquid.New(a, hyperliquid.Options{Now: now, Logger: logger})
	default:
		return nil, fmt.Errorf("account %q: exchange %q is not supported by this build", a.Name, a.Exchange)
	}
}

// NotifierEnv is what the daemon gives every notifier.
type NotifierEnv struct {
	// Stdout receives console notifications, in colour when Color is set.
	Stdout io.Writer
	Color  bool
	Logger *slog.Logger
	// Threads remembers each incident's first message so that later
	// notices can reply in its thread (the state store).
	Threads notifiers.Threads
}

// chatPace is the pacing of chat channels: Slack and Telegram accept about
// one message a second per channel or chat.
const chatPace = time.Second

// NewTarget builds one notifier with its delivery settings. Every notifier
// type is registered here and nowhere else.
func NewTarget(n config.Notifier, env NotifierEnv) (delivery.Target, error) {
	t := delivery.Target{Name: n.Name, Timeout: n.Timeout, MaxAge: n.MaxAge}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	var err error
	switch n.Type {
	case "console":
		t.Notifier = console.New(env.Stdout, env.Color)
	case "slack":
		t.MinInterval = chatPace
		t.Notifier, err = slack.New(n, slack.Options{Logger: env.Logger, Threads: env.Threads})
	case "telegram":
		t.MinInterval = chatPace
		t.Notifier, err = telegram.New(n, telegram.Options{Logger: env.Logger, Threads: env.Threads})
	case "email":
		t.Notifier, err = email.New(n, email.Options{Logger: env.Logger})
	case "webhook":
		t.Notifier, err = webhook.New(n, webhook.Options{Logger: env.Logger})
	default:
		err = fmt.Errorf("type %q is not supported by this build", n.Type)
	}
	if err != nil {
		return delivery.Target{}, fmt.Errorf("notifier %q: %w", n.Name, err)
	}
	return t, nil
}

package telegramctl

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// maxCommandAge is how old a command may be and still run: Telegram keeps
// messages for a poller for a day, and a /mute 1h sent hours ago while the
// daemon was down must not silence the next hour now.
const maxCommandAge = 5 * time.Minute

// partGap is the pause between the messages of a split reply: Telegram
// asks bots to send about one message per second to a chat.
const partGap = time.Second

// handle answers one update (the library calls it for each, in order).
func (p *poller) handle(ctx context.Context, _ *bot.Bot, upd *models.Update) {
	if ctx.Err() != nil {
		// The poller is stopping: leave the update unhandled, so the next
		// poller (after a reload) fetches and answers it.
		return
	}
	defer p.r.handled(p.cfg.token, upd.ID)
	msg := upd.Message
	if msg == nil {
		msg = upd.ChannelPost
	}
	if msg == nil || msg.Text == "" {
		return
	}
	username := p.username.Load()
	name, args, ok := parseCommand(msg.Text, username)
	if !ok {
		if username == nil && strings.HasPrefix(msg.Text, "/") && strings.Contains(strings.Fields(msg.Text)[0], "@") {
			p.log().Debug("telegram command addressed to a bot by name before getMe told this bot's; ignored",
				"chat_id", msg.Chat.ID, "command", clip(strings.Fields(msg.Text)[0], 60))
		}
		return // chat, not a command (or one for another bot)
	}
	if !p.allowedChat(&msg.Chat) {
		p.log().Warn("telegram command from a chat that is not configured; ignored",
			"chat_id", msg.Chat.ID, "chat", chatName(&msg.Chat), "user", userName(msg), "command", clip(name, 40),
			"fix", "to take commands from this chat, give a telegram notifier with this bot's token chat_id: \""+strconv.FormatInt(msg.Chat.ID, 10)+"\"")
		return
	}
	now := p.r.now()
	var lines []string
	if sent := time.Unix(int64(msg.Date), 0); msg.Date > 0 && now.Sub(sent) > maxCommandAge {
		lines = []string{"Not done: " + esc("/"+name) + " was sent " + esc(ago(now.Sub(sent))) + " ago, while marginwatch was not listening. Send it again if it still applies."}
	} else {
		lines = respond(p.r.ctl, name, args, author(msg), msg.Chat.Type != models.ChatTypePrivate, now)
	}
	p.reply(ctx, msg, lines)
}

// parseCommand splits "/mute@bot rule=x 2h" into "mute" and its
// arguments. A command addressed to another bot is not ours, nor is one
// addressed by name while ours is unknown (username nil).
func parseCommand(text string, username *string) (string, []string, bool) {
	fields := strings.Fields(text)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") || len(fields[0]) < 2 {
		return "", nil, false
	}
	name, to, addressed := strings.Cut(fields[0][1:], "@")
	if addressed && (username == nil || !strings.EqualFold(to, *username)) {
		return "", nil, false
	}
	return strings.ToLower(name), fields[1:], true
}

// allowedChat reports whether c is one of the configured chats, by id or
// by "@username" (a public channel or group).
func (p *poller) allowedChat(c *models.Chat) bool {
	allowed := p.aud.Load().allowed
	if allowed[strconv.FormatInt(c.ID, 10)] {
		return true
	}
	return c.Username != "" && allowed["@"+strings.ToLower(c.Username)]
}

// author names who sent msg for a silence or an ack: "telegram:@name", or
// the id when the sender has no username.
func author(msg *models.Message) string {
	// SenderChat first: for an anonymous group admin or a member posting
	// as a channel, From is a placeholder bot (@GroupAnonymousBot,
	// @Channel_Bot).
	switch {
	case msg.SenderChat != nil && msg.SenderChat.Username != "":
		return "telegram:@" + msg.SenderChat.Username
	case msg.SenderChat != nil:
		return "telegram:" + strconv.FormatInt(msg.SenderChat.ID, 10)
	case msg.From != nil && msg.From.Username != "":
		return "telegram:@" + msg.From.Username
	case msg.From != nil:
		return "telegram:" + strconv.FormatInt(msg.From.ID, 10)
	}
	return "telegram:" + strconv.FormatInt(msg.Chat.ID, 10)
}

// userName is who sent msg, for the log.
func userName(msg *models.Message) string {
	if msg.From == nil {
		return ""
	}
	s := strconv.FormatInt(msg.From.ID, 10)
	if msg.From.Username != "" {
		s += " @" + msg.From.Username
	}
	return clip(s, 80)
}

func chatName(c *models.Chat) string {
	switch {
	case c.Username != "":
		return "@" + c.Username
	case c.Title != "":
		return clip(c.Title, 80)
	}
	return string(c.Type)
}

// reply sends lines to msg's chat as one message or, over Telegram's
// limit, several split at line boundaries, the first as a reply to msg.
func (p *poller) reply(ctx context.Context, msg *models.Message, lines []string) {
	parts := split(lines, maxMessage)
	for i, text := range parts {
		if i > 0 {
			t := time.NewTimer(partGap)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		params := &bot.SendMessageParams{
			ChatID:             msg.Chat.ID,
			Text:               text,
			ParseMode:          models.ParseModeHTML,
			LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: bot.True()},
		}
		if msg.IsTopicMessage {
			params.MessageThreadID = msg.MessageThreadID
		}
		if i == 0 {
			params.ReplyParameters = &models.ReplyParameters{MessageID: msg.ID, AllowSendingWithoutReply: true}
		}
		if err := p.send(ctx, params); err != nil {
			p.log().Warn("cannot send a command's reply", "chat_id", msg.Chat.ID, "part", i+1, "parts", len(parts), "err", err)
			return
		}
	}
}

// send delivers one message under the notifier's timeout, once more after
// a 429's retry_after (up to 30 s).
func (p *poller) send(ctx context.Context, params *bot.SendMessageParams) error {
	for attempt := 0; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, p.cfg.timeoutOr())
		_, err := p.bot.SendMessage(sctx, params)
		cancel()
		if err == nil {
			return nil
		}
		var tooMany *bot.TooManyRequestsError
		if attempt > 0 || !errors.As(err, &tooMany) || tooMany.RetryAfter > 30 {
			return errors.New(p.redact(err.Error()))
		}
		t := time.NewTimer(time.Duration(max(tooMany.RetryAfter, 1)) * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

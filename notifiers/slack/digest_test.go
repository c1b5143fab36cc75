package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"

	goslack "github.com/slack-go/slack"

	"github.com/marginwatch/marginwatch/notifiers"
)

// digestAlert is what the daemon sends for digest "morning" at 07:00 UTC:
// one account with a position and an alert whose summary needs escaping,
// and one account never polled.
func digestAlert() notifiers.Alert {
	return notifiertest.Digest("<!channel> BTCUSDT & ```6.2%``` away")
}

// digestSection is digestAlert's text as Slack gets it.
const digestSection = "```\n" +
	"marginwatch digest morning — Sat 2026-11-28 07:00 UTC\n" +
	"\n" +
	"main (binance-usdm)\n" +
	"  equity 10000.00 · margin ratio 2.5% · leverage 3x · funding paid 24h 1.50 · drawdown n/a\n" +
	"  1 position:\n" +
	"    BTCUSDT long: size 300% of equity · leverage 10x · liquidation 10% away · no stop-loss\n" +
	"  alerts in the last 24h (1), newest first:\n" +
	"    06:00 critical firing liquidation-near BTCUSDT long — &lt;!channel&gt; BTCUSDT &amp; `\u200b`\u200b`\u200b6.2%`\u200b`\u200b`\u200b away\n" +
	"\n" +
	"sub\n" +
	"  no data received yet: the exchange has not answered\n" +
	"  no alerts in the last 24h\n" +
	"```"

func sectionTexts(t *testing.T, blocks []goslack.Block) []string {
	t.Helper()
	var out []string
	for i, b := range blocks {
		sec, ok := b.(*goslack.SectionBlock)
		if !ok || sec.Text == nil || sec.Text.Type != goslack.MarkdownType {
			t.Fatalf("block %d is %#v, want a mrkdwn section", i, b)
		}
		out = append(out, sec.Text.Text)
	}
	return out
}

func TestDigestMessage(t *testing.T) {
	text, blocks := digestMessage(digestAlert())
	if text != "marginwatch digest morning" {
		t.Errorf("text = %q", text)
	}
	got := sectionTexts(t, blocks)
	if len(got) != 1 || got[0] != digestSection {
		t.Errorf("sections:\n%q\nwant\n%q", got, digestSection)
	}
}

// longDigest is a digest of n numbered lines of about 100 characters, the
// length of a digest's position line, with a blank line every tenth.
func longDigest(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i%10 == 9 {
			continue
		}
		fmt.Fprintf(&b, "line %04d %s", i, strings.Repeat("·x", 45))
	}
	return b.String()
}

// TestDigestSplit: a digest longer than a section is split between lines
// into sections of at most 3,000 characters, fences included, each a code
// block; together they hold every line in order, the blank lines at the
// breaks aside.
func TestDigestSplit(t *testing.T) {
	const n = 300
	summary := longDigest(n)
	got := sectionTexts(t, digestBlocks(summary))
	// 270 lines of 100 characters (145 bytes) and 30 blank ones; 2,992
	// bytes per section between the fences: 20 lines of text each.
	if len(got) != 14 {
		t.Errorf("%d sections, want 14", len(got))
	}
	var lines []string
	for i, s := range got {
		if len(s) > maxSectionText {
			t.Errorf("section %d: %d bytes", i, len(s))
		}
		body, ok := strings.CutPrefix(s, "```\n")
		body, ok2 := strings.CutSuffix(body, "\n```")
		if !ok || !ok2 {
			t.Fatalf("section %d is not a code block: %q", i, s)
		}
		if strings.HasPrefix(body, "\n") || strings.HasSuffix(body, "\n") {
			t.Errorf("section %d starts or ends with a blank line", i)
		}
		lines = append(lines, strings.Split(body, "\n")...)
	}
	var want []string
	for l := range strings.SplitSeq(summary, "\n") {
		want = append(want, l)
	}
	// Drop the blank lines that fell on a break.
	j := 0
	for _, l := range want {
		if j < len(lines) && lines[j] == l {
			j++
			continue
		}
		if l != "" {
			t.Fatalf("line %q missing or out of order", l)
		}
	}
	if j != len(lines) {
		t.Errorf("sections hold %d lines, matched %d", len(lines), j)
	}
}

// TestDigestBlockLimit: a digest of more than 50 sections shows 49 and
// says in the 50th how many lines were left out.
func TestDigestBlockLimit(t *testing.T) {
	got := sectionTexts(t, digestBlocks(longDigest(2000)))
	if len(got) != maxBlocks {
		t.Fatalf("%d blocks, want %d", len(got), maxBlocks)
	}
	shown := 0
	for _, s := range got[:maxBlocks-1] {
		for l := range strings.SplitSeq(s, "\n") {
			if strings.HasPrefix(l, "line ") {
				shown++
			}
		}
	}
	// 2000 lines, 200 of them blank.
	want := fmt.Sprintf("_… %d more lines of the digest left out: a Slack message holds at most 50 blocks._", 1800-shown)
	if got[maxBlocks-1] != want {
		t.Errorf("last block %q, want %q", got[maxBlocks-1], want)
	}
	if shown != 980 { // 49 sections of 20 lines of text
		t.Errorf("%d lines shown, want 980", shown)
	}
}

// TestDigestLongLine: a line longer than a section is cut, not refused.
func TestDigestLongLine(t *testing.T) {
	got := sectionTexts(t, digestBlocks("head\n"+strings.Repeat("é", 2000)+"\ntail"))
	if len(got) != 3 {
		t.Fatalf("%d sections, want 3", len(got))
	}
	if len(got[1]) > maxSectionText || !strings.HasSuffix(got[1], "…\n```") {
		t.Errorf("long line: %d bytes, ends %q", len(got[1]), got[1][len(got[1])-10:])
	}
	if got[0] != "```\nhead\n```" || got[2] != "```\ntail\n```" {
		t.Errorf("sections %q, %q", got[0], got[2])
	}
}

// TestDigestBot: in bot mode a digest is a top-level message with blocks
// of its own (no attachment, so no colour bar), and neither reads nor
// stores a thread, even when one is stored under its ID.
func TestDigestBot(t *testing.T) {
	p := newBotPeer(t)
	threads := &notifiertest.Threads{}
	d := digestAlert()
	_ = threads.SetThread("ops", d.ID, "1600000000.000001")
	n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	posts := p.accepted()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	got := posts[0]
	if got.Text != "marginwatch digest morning" || got.ThreadTS != "" || got.Broadcast != "" || got.Attachments != "" {
		t.Errorf("post %+v: want text only, top level, no attachments", got)
	}
	var blocks []struct {
		Type string `json:"type"`
		Text struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal([]byte(got.Blocks), &blocks); err != nil {
		t.Fatalf("blocks %q: %v", got.Blocks, err)
	}
	if len(blocks) != 1 || blocks[0].Type != "section" || blocks[0].Text.Type != "mrkdwn" || blocks[0].Text.Text != digestSection {
		t.Errorf("blocks = %+v", blocks)
	}
	if len(threads.Refs()) != 1 {
		t.Errorf("threads = %v; a digest must store none", threads.Refs())
	}
}

// TestDigestWebhook pins the JSON an incoming webhook gets for a digest.
func TestDigestWebhook(t *testing.T) {
	p := newWebhookPeer(t)
	n, err := New(webhookConfig(p.url(), 5*time.Second), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := notifiers.Alert{
		ID: "digest:night:20261128T0700Z", Kind: notifiers.KindDigest, Status: notifiers.Firing, Severity: notifiers.Info,
		Rule: "digest:night", Summary: "marginwatch digest night\n\nmain\n  no open positions",
	}
	if retry, err := n.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: retry=%v err=%v", retry, err)
	}
	got := p.Delivered()
	const want = `{"text":"marginwatch digest night","blocks":[` +
		`{"type":"section","text":{"type":"mrkdwn","text":"` + "```" + `\nmarginwatch digest night\n\nmain\n  no open positions\n` + "```" + `"}}],` +
		`"replace_original":false,"delete_original":false,"unfurl_links":false,"unfurl_media":false}`
	if len(got) != 1 || got[0] != want {
		t.Errorf("webhook bodies:\n got %q\nwant %q", got, want)
	}
}

// TestDigestAmongAlerts: should a call mix alerts and a digest, the alerts
// go out as usual (threaded) and the digest after them on its own.
func TestDigestAmongAlerts(t *testing.T) {
	p := newBotPeer(t)
	threads := &notifiertest.Threads{}
	n, err := New(botConfig(p.front.URL, 5*time.Second), Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), incident("A", notifiers.KindFiring, notifiers.Critical)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), incident("A", notifiers.KindRepeat, notifiers.Critical), digestAlert()); err != nil {
		t.Fatal(err)
	}
	posts := p.accepted()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 3", len(posts))
	}
	if posts[1].ThreadTS != posts[0].TS || posts[1].Attachments == "" || posts[1].Blocks != "" {
		t.Errorf("the repeat: %+v; want an attachment in A's thread", posts[1])
	}
	if posts[2].ThreadTS != "" || posts[2].Attachments != "" || posts[2].Text != "marginwatch digest morning" {
		t.Errorf("the digest: %+v; want its own top-level message", posts[2])
	}
	if len(threads.Refs()) != 1 {
		t.Errorf("threads = %v, want A's only", threads.Refs())
	}
}

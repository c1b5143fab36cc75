package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// telegramAPI is a small Telegram Bot API on 127.0.0.1: getUpdates hands
// out the queued messages (long polling up to a second), sendMessage
// records what the bot sends; setMyCommands and getMe answer ok.
type telegramAPI struct {
	token string

	mu      sync.Mutex
	updates []map[string]any
	nextID  int64
	sent    []map[string]string
}

func (f *telegramAPI) send(chat int64, user, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.updates = append(f.updates, map[string]any{"update_id": f.nextID, "message": map[string]any{
		"message_id": f.nextID, "date": time.Now().Unix(), "text": text,
		"from": map[string]any{"id": 7000 + chat, "is_bot": false, "first_name": "T", "username": user},
		"chat": map[string]any{"id": chat, "type": "group", "title": "desk"},
	}})
}

// replies returns the texts sent to chat.
func (f *telegramAPI) replies(chat int64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.sent {
		if m["chat_id"] == strconv.FormatInt(chat, 10) {
			out = append(out, m["text"])
		}
	}
	return out
}

func (f *telegramAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+f.token+"/")
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
		return
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		_ = r.ParseForm()
	}
	var result any = true
	switch method {
	case "getUpdates":
		offset, _ := strconv.ParseInt(r.FormValue("offset"), 10, 64)
		deadline := time.Now().Add(time.Second)
		for {
			f.mu.Lock()
			for len(f.updates) > 0 && f.updates[0]["update_id"].(int64) < offset {
				f.updates = f.updates[1:]
			}
			pending := append([]map[string]any{}, f.updates...)
			f.mu.Unlock()
			if len(pending) > 0 || time.Now().After(deadline) || r.Context().Err() != nil {
				result = pending
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "sendMessage":
		fields := map[string]string{}
		if r.MultipartForm != nil {
			for k, v := range r.MultipartForm.Value {
				fields[k] = v[0]
			}
		}
		f.mu.Lock()
		f.sent = append(f.sent, fields)
		id := len(f.sent)
		f.mu.Unlock()
		chat, _ := strconv.ParseInt(fields["chat_id"], 10, 64)
		result = map[string]any{"message_id": id, "date": time.Now().Unix(), "chat": map[string]any{"id": chat, "type": "group"}, "text": fields["text"]}
	case "getMe":
		result = map[string]any{"id": 4242, "is_bot": true, "first_name": "mw", "username": "mw_test_bot"}
	case "setMyCommands", "deleteWebhook":
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

// TestTelegramMuteE2E runs the real daemon with a telegram notifier
// pointed at a fake Bot API: /mute from a chat that is not configured does
// nothing (no reply, a log line), /mute from the configured chat creates a
// silence that `marginwatch silence list` shows.
func TestTelegramMuteE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	const token = "123456:AAE-e2e-secret"
	api := &telegramAPI{token: token}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := strings.Replace(e2eConfig, "state_dir: state", "state_dir: "+filepath.Join(dir, "state"), 1)
	text = strings.Replace(text, `listen: ""`, "listen: "+freeAddr(t), 1)
	text = strings.Replace(text, "  - {name: term, type: console}\n",
		"  - {name: term, type: console}\n  - {name: phone, type: telegram, token: \""+token+"\", chat_id: \"-100\", api_url: \""+srv.URL+"\"}\n", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)

	api.send(999, "mallory", "/mute rule=liquidation-near 1h")
	api.send(-100, "alice", "/mute rule=liquidation-near 1h")
	var reply string
	waitUntil(t, 30*time.Second, "the reply to /mute", func() bool {
		for _, r := range api.replies(-100) {
			if strings.Contains(r, "Muted until") || strings.Contains(r, "Not muted") {
				reply = r
				return true
			}
		}
		return false
	})
	if got := api.replies(999); len(got) != 0 {
		t.Errorf("the daemon answered a chat that is not configured: %q", got)
	}
	m := regexp.MustCompile(`id <code>([^<]+)</code>`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("/mute did not create a silence: %s", reply)
	}
	id := m[1]

	code, out, errOut := runCLI("silence", "list", "-config", cfg)
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "rule=liquidation-near") {
		t.Errorf("silence list: exit %d, want the silence %s:\n%s%s", code, id, out, errOut)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, 15*time.Second)
	logs := d.errb.String()
	if !strings.Contains(logs, "not configured; ignored") || !strings.Contains(logs, "chat_id=999") {
		t.Errorf("the command from chat 999 was not logged:\n%s", logs)
	}
	if strings.Contains(logs, "e2e-secret") {
		t.Errorf("the bot token is in the log:\n%s", logs)
	}
}

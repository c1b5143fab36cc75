package telegramctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// fakeAPI is a Telegram Bot API for one bot token: getUpdates (long
// polling, bounded by maxWait), sendMessage (validated as Telegram does:
// parse mode, HTML entities, 4,096 characters), setMyCommands, getMe and
// deleteWebhook. Serve it on 127.0.0.1 with serve, or in-process (for
// testing/synctest) with client.
type fakeAPI struct {
	t       *testing.T
	token   string
	maxWait time.Duration

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced when an update is queued
	updates  []map[string]any
	nextID   int64
	fail     *apiFailure // getUpdates answers this while set
	meFail   *apiFailure // getMe answers this while set
	meDelay  time.Duration
	calls    map[string]int
	sent     []map[string]string // accepted sendMessage fields
	rejected []string
	commands []map[string]string // the last setMyCommands list
}

type apiFailure struct {
	code int
	desc string
}

func newFakeAPI(t *testing.T, token string) *fakeAPI {
	return &fakeAPI{t: t, token: token, maxWait: time.Second, wake: make(chan struct{}), nextID: 1000, calls: map[string]int{}}
}

// serve starts the fake on 127.0.0.1 and returns its base URL.
func (f *fakeAPI) serve() string {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// client is an HTTP client that calls the fake in-process.
func (f *fakeAPI) client() *http.Client {
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, r)
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		return rec.Result(), nil
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return rt(r) }

// send queues a message from user in chat, dated now.
func (f *fakeAPI) send(chat int64, user, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	from := map[string]any{"id": 7000 + chat, "is_bot": false, "first_name": "Trader"}
	if user != "" {
		from["username"] = user
	}
	f.updates = append(f.updates, map[string]any{
		"update_id": f.nextID,
		"message": map[string]any{
			"message_id": f.nextID, "date": time.Now().Unix(), "text": text, "from": from,
			"chat": map[string]any{"id": chat, "type": "group", "title": "desk"},
		},
	})
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fakeAPI) failUpdates(a *apiFailure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = a
}

func (f *fakeAPI) sentTo(chat int64) []string {
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

func (f *fakeAPI) refused() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rejected)
}

func (f *fakeAPI) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func apiError(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": code, "description": desc})
}

func apiOK(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+f.token+"/")
	if !ok {
		apiError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	fields, err := formFields(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Bad Request: "+err.Error())
		return
	}
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
	switch method {
	case "getUpdates":
		f.getUpdates(w, r, fields)
	case "sendMessage":
		if desc := validateMessage(fields); desc != "" {
			f.mu.Lock()
			f.rejected = append(f.rejected, desc)
			f.mu.Unlock()
			apiError(w, http.StatusBadRequest, desc)
			return
		}
		f.mu.Lock()
		f.sent = append(f.sent, fields)
		id := len(f.sent)
		f.mu.Unlock()
		chat, _ := strconv.ParseInt(fields["chat_id"], 10, 64)
		apiOK(w, map[string]any{"message_id": id, "date": time.Now().Unix(), "chat": map[string]any{"id": chat, "type": "group"}, "text": fields["text"]})
	case "setMyCommands":
		var list []map[string]string
		if err := json.Unmarshal([]byte(fields["commands"]), &list); err != nil {
			apiError(w, http.StatusBadRequest, "Bad Request: can't parse commands JSON object")
			return
		}
		for _, c := range list {
			if c["command"] == "" || len(c["command"]) > 32 || strings.ToLower(c["command"]) != c["command"] || c["description"] == "" || len(c["description"]) > 256 {
				apiError(w, http.StatusBadRequest, "Bad Request: BOT_COMMAND_INVALID")
				return
			}
		}
		f.mu.Lock()
		f.commands = list
		f.mu.Unlock()
		apiOK(w, true)
	case "getMe":
		f.mu.Lock()
		fail, delay := f.meFail, f.meDelay
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if fail != nil {
			apiError(w, fail.code, fail.desc)
			return
		}
		apiOK(w, map[string]any{"id": 4242, "is_bot": true, "first_name": "marginwatch", "username": "mw_test_bot"})
	case "deleteWebhook":
		apiOK(w, true)
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

// getUpdates answers the updates from offset on, waiting up to the
// request's timeout (bounded by maxWait) for one.
func (f *fakeAPI) getUpdates(w http.ResponseWriter, r *http.Request, fields map[string]string) {
	offset, _ := strconv.ParseInt(fields["offset"], 10, 64)
	timeout, _ := strconv.Atoi(fields["timeout"])
	wait := min(time.Duration(timeout)*time.Second, f.maxWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if fail := f.fail; fail != nil {
			f.mu.Unlock()
			apiError(w, fail.code, fail.desc)
			return
		}
		// Telegram forgets the updates before offset: they are confirmed.
		for len(f.updates) > 0 && f.updates[0]["update_id"].(int64) < offset {
			f.updates = f.updates[1:]
		}
		pending, wake := f.updates, f.wake
		f.mu.Unlock()
		if len(pending) > 0 || wait <= 0 {
			apiOK(w, pending)
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			apiOK(w, []any{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// formFields reads a request's parameters: multipart form (what
// go-telegram/bot sends), URL-encoded form or JSON.
func formFields(r *http.Request) (map[string]string, error) {
	fields := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); errors.Is(err, io.EOF) {
			return fields, nil // no parameters (getMe): the library sends an empty body
		} else if err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			fields[k] = v[0]
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			fields[k] = v[0]
		}
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, err
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				fields[k] = s
			} else {
				b, _ := json.Marshal(v)
				fields[k] = string(b)
			}
		}
	case "":
	default:
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
	return fields, nil
}

// validateMessage returns Telegram's error description for a bad
// sendMessage, or "".
func validateMessage(fields map[string]string) string {
	if fields["chat_id"] == "" {
		return "Bad Request: chat not found"
	}
	if fields["parse_mode"] != "HTML" {
		return "Bad Request: fake API expects parse_mode HTML"
	}
	text, err := parseHTML(fields["text"])
	if err != nil {
		return "Bad Request: can't parse entities: " + err.Error()
	}
	switch n := len(utf16.Encode([]rune(text))); {
	case n == 0:
		return "Bad Request: message text is empty"
	case n > 4096:
		return "Bad Request: message is too long"
	}
	return ""
}

// allowedTags are the tags replies may use: a subset of Telegram's.
var allowedTags = map[string]bool{"b": true, "i": true, "code": true, "pre": true}

// parseHTML parses Telegram HTML as strictly as Telegram does (every <, >
// and & outside a tag must be an entity; tags nested) and returns the
// text a reader sees.
func parseHTML(s string) (string, error) {
	var out strings.Builder
	var stack []string
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", fmt.Errorf("unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+end]
			i += end + 1
			if name, ok := strings.CutPrefix(tag, "/"); ok {
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", fmt.Errorf("unmatched end tag </%s>", name)
				}
				stack = stack[:len(stack)-1]
				continue
			}
			if !allowedTags[tag] {
				return "", fmt.Errorf("unsupported start tag %q", tag)
			}
			stack = append(stack, tag)
		case '>':
			return "", errors.New("unescaped '>' in text")
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 10 {
				return "", fmt.Errorf("unescaped '&' at byte offset %d", i)
			}
			ent := s[i+1 : i+end]
			i += end + 1
			switch ent {
			case "lt":
				out.WriteByte('<')
			case "gt":
				out.WriteByte('>')
			case "amp":
				out.WriteByte('&')
			case "quot":
				out.WriteByte('"')
			default:
				return "", fmt.Errorf("unsupported entity &%s;", ent)
			}
		default:
			out.WriteByte(c)
			i++
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("unclosed tag <%s>", stack[len(stack)-1])
	}
	return out.String(), nil
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/marginwatch/marginwatch/notifiers/notifiertest"
)

// fakeAPI is a Telegram Bot API server on 127.0.0.1 that answers
// sendMessage the way Telegram does: it checks the token in the path, the
// chat id, the parse mode, the HTML entities and the 4,096-character limit
// of the parsed text, and answers with Telegram's JSON shapes.
type fakeAPI struct {
	t      *testing.T
	token  string
	chatID string
	srv    *httptest.Server
	// release unblocks hanging handlers so the server can close.
	release chan struct{}

	mu         sync.Mutex
	outcome    notifiertest.Outcome
	retryAfter time.Duration
	// override, when set, answers every request with this status and body.
	override *canned
	accepted []request
	rejected []string // descriptions of requests refused by validation
	nextID   int
}

// canned is a fixed answer.
type canned struct {
	status int
	body   string
}

// request is one accepted sendMessage, its fields as sent.
type request struct {
	fields map[string]string
}

func newFakeAPI(t *testing.T, token, chatID string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, token: token, chatID: chatID, release: make(chan struct{}), nextID: 100}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	// Cleanups run last-in first-out: release the hanging handlers, then
	// close the server (which waits for them).
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.release) })
	return f
}

// SetOutcome implements notifiertest.Peer.
func (f *fakeAPI) SetOutcome(o notifiertest.Outcome, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outcome, f.retryAfter = o, retryAfter
}

// Delivered implements notifiertest.Peer: the text of each accepted message.
func (f *fakeAPI) Delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.accepted {
		out = append(out, r.fields["text"])
	}
	return out
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.accepted...)
}

func (f *fakeAPI) answer(o *canned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = o
}

func apiError(w http.ResponseWriter, code int, desc string, params map[string]any) {
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	outcome, retryAfter, override := f.outcome, f.retryAfter, f.override
	f.mu.Unlock()

	if override != nil {
		w.WriteHeader(override.status)
		_, _ = io.WriteString(w, override.body)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+f.token+"/")
	switch {
	case !ok && strings.HasPrefix(r.URL.Path, "/bot"):
		apiError(w, http.StatusUnauthorized, "Unauthorized", nil)
		return
	case !ok || method != "sendMessage":
		apiError(w, http.StatusNotFound, "Not Found", nil)
		return
	}

	switch outcome {
	case notifiertest.Permanent:
		apiError(w, http.StatusBadRequest, "Bad Request: chat not found", nil)
		return
	case notifiertest.Retryable:
		// What a reverse proxy in front of the Bot API says: not JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
		return
	case notifiertest.RateLimited:
		secs := int(retryAfter / time.Second)
		apiError(w, http.StatusTooManyRequests, fmt.Sprintf("Too Many Requests: retry after %d", secs), map[string]any{"retry_after": secs})
		return
	case notifiertest.Hang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		return
	}

	fields, err := formFields(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Bad Request: "+err.Error(), nil)
		return
	}
	if desc := f.validate(fields); desc != "" {
		f.mu.Lock()
		f.rejected = append(f.rejected, desc)
		f.mu.Unlock()
		apiError(w, http.StatusBadRequest, desc, nil)
		return
	}
	f.mu.Lock()
	f.accepted = append(f.accepted, request{fields: fields})
	f.nextID++
	id := f.nextID
	f.mu.Unlock()

	chatID, _ := strconv.ParseInt(f.chatID, 10, 64)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ok": true,
		"result": map[string]any{
			"message_id": id,
			"date":       1795842840,
			"chat":       map[string]any{"id": chatID, "title": "desk", "type": "supergroup"},
			"text":       fields["text"],
		},
	})
}

// validate returns Telegram's error description for a bad sendMessage, or "".
func (f *fakeAPI) validate(fields map[string]string) string {
	if fields["chat_id"] != f.chatID {
		return "Bad Request: chat not found"
	}
	if fields["parse_mode"] != "HTML" {
		return "Bad Request: fake API expects parse_mode HTML"
	}
	text, err := parseHTML(fields["text"])
	if err != nil {
		return "Bad Request: can't parse entities: " + err.Error()
	}
	// Telegram counts UTF-16 code units of the parsed text.
	switch n := len(utf16.Encode([]rune(text))); {
	case n == 0:
		return "Bad Request: message text is empty"
	case n > 4096:
		return "Bad Request: message is too long"
	}
	return ""
}

// formFields reads a request's parameters in any of the encodings the Bot
// API accepts: multipart form (what go-telegram/bot sends), URL-encoded form
// or JSON.
func formFields(r *http.Request) (map[string]string, error) {
	fields := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
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
	default:
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
	return fields, nil
}

// telegramTags are the tags Telegram's HTML mode accepts.
var telegramTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "tg-spoiler": true, "span": true,
	"a": true, "code": true, "pre": true, "blockquote": true, "tg-emoji": true,
}

// parseHTML parses Telegram HTML as strictly as Telegram does (every <, >
// and & outside a tag must be an entity; tags must be known and nested) and
// returns the text a reader sees.
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
			name, _, _ := strings.Cut(tag, " ")
			if !telegramTags[name] {
				return "", fmt.Errorf("unsupported start tag %q", name)
			}
			stack = append(stack, name)
		case '>':
			return "", errors.New("unescaped '>' in text")
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 10 {
				return "", fmt.Errorf("unescaped '&' at byte offset %d", i)
			}
			ent := s[i+1 : i+end]
			i += end + 1
			switch {
			case ent == "lt":
				out.WriteByte('<')
			case ent == "gt":
				out.WriteByte('>')
			case ent == "amp":
				out.WriteByte('&')
			case ent == "quot":
				out.WriteByte('"')
			case strings.HasPrefix(ent, "#"):
				n, err := strconv.ParseInt(strings.TrimPrefix(ent[1:], "x"), map[bool]int{true: 16, false: 10}[strings.HasPrefix(ent[1:], "x")], 32)
				if err != nil {
					return "", fmt.Errorf("bad numeric entity &%s;", ent)
				}
				out.WriteRune(rune(n))
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

package telegramctl

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxMessage is Telegram's limit on a message's text, in UTF-16 code
// units of the text after entity parsing. Splitting measures the HTML
// source, which is never shorter, so a part always fits.
const maxMessage = 4096

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// esc makes s safe as text in Telegram HTML.
func esc(s string) string { return escaper.Replace(s) }

// code is s, escaped, in <code>: an id or matcher to copy.
func code(s string) string { return "<code>" + esc(s) + "</code>" }

// clip shortens s to n runes, ending with "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func units(s string) int { return len(utf16.Encode([]rune(s))) }

// split joins lines into messages of at most limit UTF-16 units, cutting
// only between lines. Each line is complete HTML (every tag it opens it
// closes), so every part is too. A line longer than limit on its own is
// cut to limit as plain text.
func split(lines []string, limit int) []string {
	var parts []string
	var cur strings.Builder
	n := 0
	for _, l := range lines {
		u := units(l)
		if u > limit {
			l = clipHTML(l, limit)
			u = units(l)
		}
		if cur.Len() > 0 && n+1+u > limit {
			parts = append(parts, cur.String())
			cur.Reset()
			n = 0
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
			n++
		}
		cur.WriteString(l)
		n += u
	}
	if cur.Len() > 0 {
		parts = append(parts, cur.String())
	}
	return parts
}

// clipHTML returns the text of line (tags dropped) cut to fit limit units
// once escaped, ending with "…".
func clipHTML(line string, limit int) string {
	var text strings.Builder
	inTag := false
	for _, r := range line {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
		case !inTag:
			text.WriteRune(r)
		}
	}
	plain := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text.String())
	var out strings.Builder
	n := 0
	for _, r := range plain {
		e := esc(string(r))
		if n+units(e)+1 > limit {
			break
		}
		out.WriteString(e)
		n += units(e)
	}
	return out.String() + "…"
}

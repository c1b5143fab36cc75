package notifiers

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces a secret in text that Redact cleaned.
const Redacted = "<redacted>"

// shortSecret is the length below which a secret is redacted only where it
// stands as a whole word.
const shortSecret = 8

// Redact returns s with every secret in secrets replaced by Redacted, the
// longest first, so that a longer secret is not broken up by a shorter one.
//
// A secret of 8 bytes or more is replaced wherever it occurs: a string that
// long turns up nowhere by chance. A shorter one (a weak SMTP password) is
// replaced only where it is not part of a longer word: a password "ail"
// must not turn "mail: failed" into "m<redacted>: f<redacted>ed", which
// would garble the error and show the reader the password as plainly as
// printing it. Empty secrets are ignored.
func Redact(s string, secrets ...string) string {
	list := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		if sec != "" {
			list = append(list, sec)
		}
	}
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range list {
		if len(sec) >= shortSecret {
			s = strings.ReplaceAll(s, sec, Redacted)
			continue
		}
		s = replaceWords(s, sec)
	}
	return s
}

// replaceWords replaces the occurrences of sec in s that do not extend a
// word: where sec starts (ends) with a letter or digit, the character
// before (after) it must not be one.
func replaceWords(s, sec string) string {
	first, _ := utf8.DecodeRuneInString(sec)
	last, _ := utf8.DecodeLastRuneInString(sec)
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, sec)
		if i < 0 {
			break
		}
		before, _ := utf8.DecodeLastRuneInString(rest[:i])
		if i == 0 && b.Len() > 0 {
			before, _ = utf8.DecodeLastRuneInString(b.String())
		}
		after, _ := utf8.DecodeRuneInString(rest[i+len(sec):])
		joinsBefore := (i > 0 || b.Len() > 0) && isWord(first) && isWord(before)
		joinsAfter := i+len(sec) < len(rest) && isWord(last) && isWord(after)
		if joinsBefore || joinsAfter {
			// Part of a longer word: keep it, and look again one character on.
			_, size := utf8.DecodeRuneInString(rest[i:])
			b.WriteString(rest[:i+size])
			rest = rest[i+size:]
			continue
		}
		b.WriteString(rest[:i])
		b.WriteString(Redacted)
		rest = rest[i+len(sec):]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

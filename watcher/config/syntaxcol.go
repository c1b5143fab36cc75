package config

import (
	"strings"
	"unicode/utf8"
)

// syntaxColumn guesses the 1-based column of a YAML syntax error on line
// (the first line after which the file stops parsing), from the parser's
// message: yaml.v3 reports lines only. 0 when the line is blank.
//
//   - a tab or a character that cannot start a token: the first tab, else
//     the first @ or ` starting a value, else the line's content;
//   - an unclosed flow list or mapping: its last [ or { on the line;
//   - "mapping values are not allowed": the second ": " outside quotes
//     (as in `summary: Price: high`), which needs quoting;
//   - anything else (mostly indentation): the first character of the
//     line's content, whose indentation is what to check.
func syntaxColumn(line, msg string) int {
	first := strings.IndexFunc(line, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' })
	if first < 0 {
		return 0
	}
	at := first
	switch {
	case strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token"):
		if i := strings.IndexByte(line, '\t'); i >= 0 {
			at = i
		} else if i := reservedStart(line); i >= 0 {
			at = i
		}
	case strings.Contains(msg, "expected ',' or ']'"):
		if i := strings.LastIndexByte(line, '['); i >= 0 {
			at = i
		}
	case strings.Contains(msg, "expected ',' or '}'"):
		if i := strings.LastIndexByte(line, '{'); i >= 0 {
			at = i
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		if i := secondMappingColon(line); i >= 0 {
			at = i
		}
	}
	return utf8.RuneCountInString(line[:at]) + 1
}

// secondMappingColon returns the byte offset of the second ':' followed by
// a space or the line's end, outside quotes and before a comment, or -1.
func secondMappingColon(line string) int {
	line = strings.TrimRight(line, "\r\n")
	var quote byte
	seen := 0
	for i := 0; i < len(line); i++ {
		b := line[i]
		switch {
		case quote != 0:
			if b == quote {
				quote = 0
			}
		case b == '\'' || b == '"':
			quote = b
		case b == '#' && (i == 0 || line[i-1] == ' '):
			return -1
		case b == ':' && (i+1 == len(line) || line[i+1] == ' '):
			if seen++; seen == 2 {
				return i
			}
		}
	}
	return -1
}

// lineAt returns the 1-based line n of data, or "".
func lineAt(data []byte, n int) string {
	lines := strings.SplitN(string(data), "\n", n+1)
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// reservedStart returns the byte offset of the first @ or ` that starts a
// plain value (YAML reserves both), or -1.
func reservedStart(line string) int {
	for i := 0; i < len(line); i++ {
		if (line[i] == '@' || line[i] == '`') && (i == 0 || strings.IndexByte(" [,{-", line[i-1]) >= 0) {
			return i
		}
	}
	return -1
}

package notifiers

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"long secret anywhere", "POST /bot123:ABCDEFGH/send", []string{"123:ABCDEFGH"}, "POST /bot<redacted>/send"},
		{"short secret as a word", "535 bad password abc for user", []string{"abc"}, "535 bad password <redacted> for user"},
		{"short secret at both ends", "abc: wrong abc", []string{"abc"}, "<redacted>: wrong <redacted>"},
		{"short secret in quotes", `auth "abc" rejected`, []string{"abc"}, `auth "<redacted>" rejected`},
		{"short secret inside words stays", "mail: failed to send; email ail", []string{"ail"}, "mail: failed to send; email <redacted>"},
		{"short secret repeated in a word", "abcabc abc", []string{"abc"}, "abcabc <redacted>"},
		{"punctuation secret", "pw p@s! and p@s!x", []string{"p@s!"}, "pw <redacted> and <redacted>x"},
		{"longest first", "token hunter2hunter2 hunter2", []string{"hunter2", "hunter2hunter2"}, "token <redacted> <redacted>"},
		{"empty secret ignored", "nothing", []string{""}, "nothing"},
		{"unicode neighbours", "éabc abcé", []string{"abc"}, "éabc abcé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in, tt.secrets...); got != tt.want {
				t.Errorf("Redact(%q, %q) = %q, want %q", tt.in, tt.secrets, got, tt.want)
			}
		})
	}
}

// A short secret never survives as a word of its own, whatever surrounds it.
func TestRedactNeverShowsAShortSecret(t *testing.T) {
	for _, sep := range []string{" ", ":", "=", "\"", "'", "(", ")", ",", "\n", "/"} {
		in := "user bob" + sep + "xyz" + sep + "end"
		got := Redact(in, "xyz")
		if strings.Contains(got, sep+"xyz"+sep) {
			t.Errorf("Redact(%q) = %q: the secret is still there", in, got)
		}
	}
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Parse: it must never panic, and must
// return exactly one of a config and an error (of type Errors).
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/rules.d/*.yaml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("rules: [{<<: [*a], name: r}]\nx-a: &a {metric: leverage}\n"))
	f.Add([]byte("digests: [{name: d, schedule: \"CRON_TZ=UTC\"}]\n"))
	env := envOf(map[string]string{
		"BINANCE_API_KEY":       "k: #v",
		"CREDENTIALS_DIRECTORY": "secrets",
		"EMPTY":                 "",
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("testdata/fuzz.yaml", data, env)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", cfg != nil, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %q is not a non-empty config.Errors", err, err)
			}
		}
	})
}

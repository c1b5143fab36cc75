// Package config loads and validates marginwatch's YAML configuration.
//
// Loading is strict and positioned: the file is parsed into a yaml.Node tree
// and a small reflection-based decoder walks it into the structs of types.go,
// so that every problem can be reported as "file:line:col: field.path: message"
// and every problem is reported, not only the first. The decoder:
//
//   - rejects unknown keys (suggesting the closest known key) and duplicate keys;
//   - expands ${NAME} in scalar values after parsing, so a secret holding ":"
//     or "#" cannot break or inject YAML; "$$" is a literal "$", any other "$"
//     is kept as written (Go templates use $ for variables), and an unset
//     variable is an error;
//   - accepts Go durations (15s, 1h30m) and rejects negative ones;
//   - treats an empty value ("key:" with nothing after it) as if the key were
//     not written, so the default applies;
//   - supports YAML anchors, aliases and "<<" merge keys, so rules can share
//     settings; top-level keys starting with "x-" are ignored so anchors have
//     a place to live (x-defaults: &d {...}); expansion is bounded, so a
//     "billion laughs" file fails fast;
//   - fills every element's At Location, so later stages (rules.Compile) can
//     report their own errors with positions.
//
// Defaults are assigned before each element is decoded, then derived defaults
// (an account's intervals from defaults:, a rule's scope and repeat) are
// filled in, and finally every invariant is validated. Secrets given as
// *_file are read into the plain field; their content never appears in an
// error.
//
// A valid config can still hold things that will not do what they seem to
// say, such as an event rule no configured account can fire. Those are not
// errors: Config.Warnings lists them, positioned like errors, for `check` to
// print and `run` to log.
package config

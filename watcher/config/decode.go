package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// maxAliasDepth bounds alias and merge-key chains; the YAML parser already
// rejects self-referencing anchors, this only keeps a hostile file from
// making the decoder recurse without end.
const maxAliasDepth = 32

var (
	durationType = reflect.TypeFor[time.Duration]()
	locationType = reflect.TypeFor[Location]()
)

// collector gathers every problem of one Load. Errors whose path lies at or
// below a path that already failed to decode are dropped, so that one typo
// does not also produce "is required" or "is empty" noise.
type collector struct {
	errs Errors
	bad  map[string]bool // file + "\x00" + path
	seen map[Error]bool  // a mapping merged in twice reports its problems once
	// suggested is the work spent on "did you mean" suggestions, in byte
	// comparisons; see suggestBudget.
	suggested int
}

func (c *collector) add(e *Error) {
	if c.suppressed(e) || c.seen[*e] {
		return
	}
	if c.seen == nil {
		c.seen = make(map[Error]bool)
	}
	c.seen[*e] = true
	c.errs = append(c.errs, e)
}

// addBad records e and suppresses later errors about the same path.
func (c *collector) addBad(e *Error) {
	c.add(e)
	c.markBad(e.File, e.Path)
}

func (c *collector) markBad(file, path string) {
	if c.bad == nil {
		c.bad = make(map[string]bool)
	}
	c.bad[file+"\x00"+path] = true
}

func (c *collector) suppressed(e *Error) bool {
	for p := e.Path; p != ""; p = parentPath(p) {
		if c.bad[e.File+"\x00"+p] {
			return true
		}
	}
	return false
}

// parentPath strips the last component of a field path:
// "rules[2].below.critical" -> "rules[2].below" -> "rules[2]" -> "rules" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// sorted returns the errors in file order: files in the order given, then by
// line and column.
func (c *collector) sorted(files []string) Errors {
	ranks := make(map[string]int, len(files))
	for i, f := range slices.Backward(files) {
		ranks[f] = i // the first of duplicates wins
	}
	rank := func(f string) int {
		if i, ok := ranks[f]; ok {
			return i
		}
		return len(files)
	}
	es := slices.Clone(c.errs)
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if ra, rb := rank(a.File), rank(b.File); ra != rb {
			return ra < rb
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Pos.Col < b.Pos.Col
	})
	return es
}

// decoder walks a yaml.Node tree of one file into a Go value.
type decoder struct {
	file string
	env  func(string) (string, bool)
	c    *collector
	// repeatAll records the rules (by path) whose repeat: was one duration
	// for every severity; the severities are known only after decoding.
	repeatAll map[string]time.Duration
	// defaults assigns defaults to a newly allocated element before it is
	// decoded (e.g. Rule.SendResolved = true).
	defaults func(v reflect.Value)
	// budget is how many more nodes the decoder may visit. Aliases and merge
	// keys can make a small file expand exponentially ("billion laughs");
	// a file without them visits each node at most twice.
	budget int
}

// newDecoder returns a decoder for file, whose size bounds the work.
func newDecoder(file string, size int, env func(string) (string, bool), c *collector) *decoder {
	return &decoder{file: file, env: env, c: c, defaults: assignDefaults, budget: 100_000 + 4*size}
}

// spend takes one unit of work; once the budget is gone it reports the
// problem (once) and the decoder stops.
func (d *decoder) spend(n *yaml.Node) bool {
	d.budget--
	switch {
	case d.budget >= 0:
		return true
	case d.budget == -1:
		d.c.add(&Error{File: d.file, Pos: nodePos(n),
			Msg: "aliases and merge keys expand this file to too many values; write the values out or nest fewer aliases"})
	}
	return false
}

func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// errAt reports a problem at node n about the field at path.
func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	d.c.addBad(&Error{File: d.file, Pos: nodePos(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// parseDocument parses data as exactly one YAML document and returns its
// root node, or nil for an empty file.
func parseDocument(file string, data []byte, c *collector) (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports its own errors by panicking internally and
		// recovering; anything escaping that is a parser bug, and a config
		// loader must not take the daemon down with it.
		if r := recover(); r != nil {
			c.add(&Error{File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)})
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		c.add(syntaxError(file, data, err))
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		c.add(syntaxError(file, data, err))
		return nil
	default:
		c.add(&Error{File: file, Pos: nodePos(&extra), Msg: "a second YAML document: the file must hold exactly one; remove the second \"---\""})
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	return root
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error ("yaml: line 3: ...") into a positioned
// Error with a hint for the common mistakes.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// yaml.v3 reports where the enclosing block started (and that off by
	// one), not the line that broke it; find the line after which the file
	// stops parsing.
	col := 0
	if l := firstBadLine(data); l > 0 {
		line = l
		col = syntaxColumn(lineAt(data, l), msg)
	}
	switch {
	case strings.Contains(msg, "expected ',' or ']'") || strings.Contains(msg, "expected ',' or '}'"):
		msg += " (close the [ with ] or the { with }, or quote a value holding , [ ] { or })"
	case strings.Contains(msg, "did not find expected"):
		msg += " (check the indentation)"
	case strings.Contains(msg, "mapping values are not allowed"):
		msg += ` (quote a value that contains ": ")`
	case strings.Contains(msg, "found character that cannot start any token") || strings.Contains(msg, "tab"):
		msg += " (YAML indents with spaces, not tabs; quote values starting with @ or `)"
	}
	return &Error{File: file, Pos: Pos{Line: line, Col: col}, Msg: "YAML syntax: " + msg}
}

// firstBadLine returns the 1-based line after the longest prefix of whole
// lines that parses, or 0 when that cannot be told cheaply.
//
// The search runs from the end, because a prefix cut inside a multi-line
// value (a flow list, a quoted string) fails too. Each try re-parses a
// prefix, so trying every line would be quadratic: the search goes line by
// line only while that costs a few parses of the file (errors near the end,
// the common case, are found exactly), then steps back by doubling distances
// and bisects, O(log lines) parses in all. Bisecting can stop at a
// multi-line value before the real culprit; the line is then early, never
// past it.
func firstBadLine(data []byte) int {
	const maxLines, maxBytes = 2000, 128 << 10
	if len(data) > maxBytes {
		return 0
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxLines {
		return 0
	}
	// ends[k] is the length of the first k lines; the first 0 lines
	// parse, the whole file did not.
	ends := make([]int, len(lines)+1)
	for k, l := range lines {
		ends[k+1] = ends[k] + len(l)
	}
	prefixParses := func(k int) bool { return parses(data[:ends[k]]) }

	bad := len(lines) // the first bad lines do not parse
	for work := 0; bad > 0 && work < 2*len(data); work += ends[bad] {
		bad--
		if prefixParses(bad) {
			return bad + 1
		}
	}
	good := 0
	for step := 1; bad-step > 0; step *= 2 {
		if prefixParses(bad - step) {
			good = bad - step
			break
		}
		bad -= step
	}
	for bad-good > 1 {
		if m := (good + bad) / 2; prefixParses(m) {
			good = m
		} else {
			bad = m
		}
	}
	return good + 1
}

// parses reports whether data is a well-formed YAML stream.
func parses(data []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range maxDocuments {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
	return true
}

// maxDocuments bounds the documents parses walks (one per "---").
const maxDocuments = 1000

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Style == 0)
}

// field is one decodable struct field.
type field struct {
	name  string // YAML key
	index int
}

// fieldCache maps a struct type to its fieldsOf.
var fieldCache sync.Map

// fieldsOf lists the YAML keys of a struct type in declaration order. The
// result is shared: do not modify it.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if !sf.IsExported() || tag == "" || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		fs = append(fs, field{name: name, index: i})
	}
	fieldCache.Store(t, fs)
	return fs
}

// joinPath appends key to a field path, as Location.Errorf does.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pair is one key/value of a mapping after merge keys are applied.
type pair struct {
	key, value *yaml.Node
}

// pairs lists a mapping's entries: the written ones in order (duplicates
// reported), then entries from "<<" merge keys that were not written.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out []pair
	seen := make(map[string]*yaml.Node)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(n) {
			return out
		}
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errAt(n.Content[i], path, "a key must be a plain string")
			continue
		}
		if k.Value == "<<" && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.c.add(&Error{File: d.file, Pos: nodePos(k), Path: path,
				Msg: fmt.Sprintf("duplicate key %q (first written at line %d); keep one", k.Value, first.Line)})
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, written := range merges {
		m := resolve(written)
		var maps []*yaml.Node
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			maps = []*yaml.Node{m}
		case m != nil && m.Kind == yaml.SequenceNode && len(m.Content) > 0:
			for _, e := range m.Content {
				maps = append(maps, resolve(e))
			}
		default:
			maps = []*yaml.Node{nil} // reported below
		}
		for _, mm := range maps {
			if mm == nil || mm.Kind != yaml.MappingNode || depth >= maxAliasDepth {
				d.errAt(written, path, "a \"<<\" merge key needs a mapping or a list of mappings (e.g. <<: *defaults)")
				break
			}
			for _, p := range d.pairs(mm, path, depth+1) {
				if _, ok := seen[p.key.Value]; !ok {
					seen[p.key.Value] = p.key
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// decodeStruct decodes mapping n into the struct v whose field path is path.
// If the struct has an At Location it is filled; otherwise positions of keys
// go to owner under the prefix rel.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, owner *Location, rel string) {
	t := v.Type()
	fs := fieldsOf(t)
	atField, hasAt := t.FieldByName("At")
	hasAt = hasAt && atField.Type == locationType
	if hasAt {
		owner = &Location{File: d.file, Path: path, Pos: nodePos(n), Keys: make(map[string]Pos)}
		rel = ""
		// Set even when n turns out not to be a mapping, so that later
		// errors about this element carry its file and are suppressed.
		defer func() { v.FieldByIndex(atField.Index).Set(reflect.ValueOf(*owner)) }()
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "must be a mapping of keys (key: value), not %s", describe(n))
		return
	}
	for _, p := range d.pairs(n, path, 0) {
		key := p.key.Value
		i := slices.IndexFunc(fs, func(f field) bool { return f.name == key })
		if i < 0 && path == "" && strings.HasPrefix(key, "x-") {
			continue // an extension key at the top, for anchors: x-common: &common {...}
		}
		if i < 0 {
			d.unknownKey(p.key, path, fs)
			continue
		}
		val := resolve(p.value)
		if isNull(val) {
			continue // as if not written: the default stays
		}
		relKey := key
		if rel != "" {
			relKey = rel + "." + key
		}
		if owner != nil {
			owner.Keys[relKey] = nodePos(val)
		}
		fpath := joinPath(path, key)
		fv := v.Field(fs[i].index)
		if t == reflect.TypeFor[Rule]() && key == "repeat" && val.Kind == yaml.ScalarNode {
			// repeat: 1h sets every severity the rule turns out to have.
			if dur, ok := d.duration(val, fpath); ok {
				if d.repeatAll == nil {
					d.repeatAll = make(map[string]time.Duration)
				}
				d.repeatAll[path] = dur
			}
			continue
		}
		if t == reflect.TypeFor[Rule]() && key == "window" && val.Kind == yaml.ScalarNode && val.Value == WindowDay {
			// window: day is the calendar day since the daily reset.
			v.FieldByName("Daily").SetBool(true)
			continue
		}
		d.decodeValue(val, fv, fpath, owner, relKey)
	}
}

// unknownKey reports key as unknown, suggesting the closest known key.
func (d *decoder) unknownKey(k *yaml.Node, path string, fs []field) {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	if s := d.c.suggest(k.Value, names); s != "" {
		d.c.add(&Error{File: d.file, Pos: nodePos(k), Path: path,
			Msg: fmt.Sprintf("unknown key %q (did you mean %q?)", k.Value, s)})
		// The misspelt key is most likely the intended one: do not also
		// complain that the intended one is missing.
		d.c.markBad(d.file, joinPath(path, s))
		return
	}
	d.c.add(&Error{File: d.file, Pos: nodePos(k), Path: path,
		Msg: fmt.Sprintf("unknown key %q (known keys: %s)", k.Value, strings.Join(names, ", "))})
}

// describe names the kind of a node for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "empty"
}

// decodeValue decodes n into v.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string, owner *Location, rel string) {
	n = resolve(n)
	if n == nil || !d.spend(n) {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		if dur, ok := d.duration(n, path); ok {
			v.SetInt(int64(dur))
		}
	case t.Kind() == reflect.String:
		if d.bareVariable(n, path, t == secretType) {
			return
		}
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.errAt(n, path, "%q is not a boolean (use true or false)", s)
		}
	case t.Kind() == reflect.Int:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || int64(int(i)) != i {
			d.errAt(n, path, "%q is not a whole number", s)
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errAt(n, path, "%q is not a number (use e.g. 15 or 0.5)", s)
			return
		}
		v.SetFloat(f)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "must be a list (e.g. [a, b] or one \"- item\" per line), not %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			if owner != nil {
				if r := resolve(e); r != nil {
					owner.Keys[fmt.Sprintf("%s[%d]", rel, i)] = nodePos(r)
				}
			}
			d.decodeValue(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i), owner, fmt.Sprintf("%s[%d]", rel, i))
		}
		v.Set(s)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "must be a mapping (e.g. {key: value}), not %s", describe(n))
			return
		}
		m := reflect.MakeMap(t)
		for _, p := range d.pairs(n, path, 0) {
			key := p.key.Value
			val := resolve(p.value)
			kpath := joinPath(path, key)
			if owner != nil && val != nil {
				owner.Keys[rel+"."+key] = nodePos(val)
			}
			ev := reflect.New(t.Elem()).Elem()
			if isNull(val) {
				d.errAt(p.key, kpath, "has no value")
				continue
			}
			d.decodeValue(val, ev, kpath, owner, rel+"."+key)
			m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), ev)
		}
		v.Set(m)
	case t.Kind() == reflect.Struct:
		if d.defaults != nil {
			d.defaults(v)
		}
		d.decodeStruct(n, v, path, owner, rel)
	default:
		// A field type the decoder does not know is a programming error in
		// types.go; report it rather than panic.
		d.errAt(n, path, "cannot decode into %s (internal error)", t)
	}
}

// scalar returns the ${VAR}-expanded value of scalar node n.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, path, "must be a single value, not %s", describe(n))
		return "", false
	}
	s, err := expand(n.Value, d.env)
	if err != nil {
		d.errAt(n, path, "%s", err)
		return "", false
	}
	return s, true
}

// duration parses a Go duration (15s, 1h30m); negative durations are errors.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		hint := "use e.g. 15s, 1m30s"
		if strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w") {
			hint += "; days are written in hours, e.g. 24h"
			if strings.HasSuffix(path, ".window") {
				hint += ", or window: day for the calendar day"
			}
		}
		d.errAt(n, path, "%q is not a duration (%s)", s, hint)
		return 0, false
	}
	if dur < 0 {
		d.errAt(n, path, "%q is negative; durations must be 0 or more", s)
		return 0, false
	}
	return dur, true
}

// expand replaces ${NAME} with env(NAME) and $$ with $. Any other $ is kept,
// so Go template variables ({{$x := .Value}}) survive.
func expand(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write ${NAME}, or $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !envNameRE.MatchString(name) {
				return "", fmt.Errorf("%q is not a valid environment variable name (use letters, digits and _; write $$ for a literal $)", name)
			}
			val, ok := env(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Bounds of "did you mean" suggestions: an edit distance costs the product
// of the lengths, and a file can hold many unknown names and, for notifier
// and account names, many candidates.
const (
	// maxSuggestLen is the longest string (value or candidate) compared.
	maxSuggestLen = 100
	// suggestBudget is the byte comparisons all suggestions of one Load may
	// spend; past it, errors come without suggestions.
	suggestBudget = 20_000_000
)

// suggest is suggest within the collector's budget for suggestions.
func (c *collector) suggest(s string, candidates []string) string {
	return suggestWithin(s, candidates, &c.suggested)
}

// suggest returns the candidate closest to s by edit distance when it is
// close enough to be a likely typo, else "".
func suggest(s string, candidates []string) string {
	spent := 0
	return suggestWithin(s, candidates, &spent)
}

// suggestWithin is suggest adding the work of edit distances to *spent and
// computing none past suggestBudget.
func suggestWithin(s string, candidates []string, spent *int) string {
	best, bestD := "", math.MaxInt
	limit := max(2, len(s)/3)
	if len(s) <= maxSuggestLen {
		lower := strings.ToLower(s)
		for _, c := range candidates {
			// The distance is at least the difference in length: a
			// candidate that cannot be within limit is not computed.
			if len(c) > maxSuggestLen || len(c) > len(s)+limit || len(s) > len(c)+limit {
				continue
			}
			if *spent += len(s) * len(c); *spent > suggestBudget {
				break
			}
			if d := editDistance(lower, c); d < bestD {
				best, bestD = c, d
			}
		}
	}
	if bestD <= limit && bestD < len(s) {
		return best
	}
	// A prefix ("liq_distance" for "liq_distance_pct") is also a good guess.
	if len(s) >= 4 {
		for _, c := range candidates {
			if strings.HasPrefix(c, s) || strings.HasPrefix(s, c) && len(c) >= 4 {
				return c
			}
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package recipe

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Kind is what a recipe does with a file.
type Kind string

// Kinds of recipe.
const (
	// KindImage renders renditions of an image (Recipe).
	KindImage Kind = "image"
	// KindRecords validates a CSV or JSONL file row by row and writes the valid rows (Records).
	KindRecords Kind = "records"
	// KindPassthrough validates a file (type and size) and publishes it unchanged: for files
	// that need only the checks and the output protocol.
	KindPassthrough Kind = "passthrough"
)

// Unmatched policies: what happens to an upload no recipe matches.
const (
	UnmatchedSkip       = "skip"       // skipped and counted (metric Unmatched), no record
	UnmatchedQuarantine = "quarantine" // quarantined as no_recipe
)

// Routes is the whole routing configuration (RECIPES_JSON): named recipes, tried in order, the
// first whose match holds taking the file.
type Routes struct {
	Recipes   []Entry `json:"recipes"`
	Unmatched string  `json:"unmatched,omitempty"` // UnmatchedSkip (the default) or UnmatchedQuarantine
}

// Entry is one named recipe: what it matches, and what it makes.
type Entry struct {
	Name  string `json:"name"`
	Kind  Kind   `json:"kind"`
	Match Match  `json:"match,omitzero"`
	// MaxBytes bounds the source (0: MAX_BYTES for an image recipe, DefaultStreamMaxBytes for
	// the streamed kinds).
	MaxBytes    int64        `json:"max_bytes,omitempty"`
	Image       *Recipe      `json:"image,omitempty"`
	Records     *Records     `json:"records,omitempty"`
	Passthrough *Passthrough `json:"passthrough,omitempty"`
	// Canary, when set, is a new version of the recipe tried on a share of the files first.
	Canary *Canary `json:"canary,omitempty"`
}

// Canary is a recipe's candidate settings (of the same kind) and the share of files, picked by
// a stable hash of their key, that get them.
type Canary struct {
	Percent     float64      `json:"percent"`
	Image       *Recipe      `json:"image,omitempty"`
	Records     *Records     `json:"records,omitempty"`
	Passthrough *Passthrough `json:"passthrough,omitempty"`
}

// Picks reports whether key is among the canary's share: the first 8 bytes of the key's SHA-256,
// as a number, modulo 10,000, below percent × 100. The same keys are picked on every run, on any
// machine; raising the percentage only adds keys.
func (c Canary) Picks(key string) bool {
	sum := sha256.Sum256([]byte(key))
	return float64(binary.BigEndian.Uint64(sum[:8])%10000) < c.Percent*100
}

// CanaryEntry is the entry as its canary makes it: the canary's settings in place of its own.
func (e Entry) CanaryEntry() Entry {
	c := *e.Canary
	e.Image, e.Records, e.Passthrough, e.Canary = c.Image, c.Records, c.Passthrough, nil
	return e
}

// Promoted is the entry with its canary's settings made its own, and no canary.
func (e Entry) Promoted() Entry {
	if e.Canary == nil {
		return e
	}
	return e.CanaryEntry()
}

// Match selects files by key and by the content type detected from their first bytes; every
// part given must hold, and an empty match takes every file.
type Match struct {
	Prefix string `json:"prefix,omitempty"`
	// Glob is a pattern over the whole key: * within a segment, ** across segments, ?, [a-z],
	// {a,b} (github.com/bmatcuk/doublestar).
	Glob string `json:"glob,omitempty"`
	// Types are detected content types: "image/jpeg", or a family "image/*", "text/*".
	Types []string `json:"types,omitempty"`
}

// Passthrough is the passthrough kind's (optional) settings.
type Passthrough struct {
	CacheControl string `json:"cache_control,omitempty"` // "" for DefaultRenditionsCache
}

// DefaultStreamMaxBytes bounds the sources of the streamed kinds (records, passthrough) unless
// the recipe says otherwise: 50 GiB, whose JSONL (about one and a half times a CSV's size) stays
// within the 78 GiB a streamed output holds (pkg/storage).
const DefaultStreamMaxBytes = 50 << 30

// DefaultName is the name of the one image recipe RECIPE_JSON (or nothing) configures.
const DefaultName = "default"

// Single is the routing of a deployment configured by RECIPE_JSON alone (or by nothing): one
// image recipe, named "default", for every file.
func Single(r Recipe) Routes {
	return Routes{Recipes: []Entry{{Name: DefaultName, Kind: KindImage, Image: &r}}}
}

// ParseRoutes reads RECIPES_JSON. Unknown fields are errors; every problem is reported, each
// naming its entry and field.
func ParseRoutes(data []byte) (Routes, error) {
	var raw struct {
		Recipes   []json.RawMessage `json:"recipes"`
		Unmatched string            `json:"unmatched"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Routes{}, fmt.Errorf("recipes JSON: %w", err)
	}
	rs := Routes{Unmatched: raw.Unmatched}
	var errs []error
	for i, msg := range raw.Recipes {
		e, err := parseEntry(msg)
		if err != nil {
			errs = append(errs, fmt.Errorf("recipes[%d]%s: %w", i, quotedName(e.Name), err))
			continue
		}
		rs.Recipes = append(rs.Recipes, e)
	}
	if len(errs) > 0 {
		return Routes{}, errors.Join(errs...)
	}
	return rs, rs.Validate()
}

func quotedName(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

// parseEntry reads one entry, its image recipe through Parse (so its defaults and checks are
// the ones RECIPE_JSON has) and its records settings through ParseRecords.
func parseEntry(msg json.RawMessage) (Entry, error) {
	var raw struct {
		Entry
		Image   json.RawMessage `json:"image"` // shadow Entry's: read through their parsers
		Records json.RawMessage `json:"records"`
		Canary  *struct {
			Percent     float64         `json:"percent"`
			Image       json.RawMessage `json:"image"`
			Records     json.RawMessage `json:"records"`
			Passthrough *Passthrough    `json:"passthrough"`
		} `json:"canary"`
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return raw.Entry, err
	}
	e := raw.Entry
	var err error
	if e.Image, e.Records, err = (specs{raw.Image, raw.Records}).parse(""); err != nil {
		return e, err
	}
	if c := raw.Canary; c != nil {
		e.Canary = &Canary{Percent: c.Percent, Passthrough: c.Passthrough}
		if e.Canary.Image, e.Canary.Records, err = (specs{c.Image, c.Records}).parse("canary."); err != nil {
			return e, err
		}
	}
	return e, nil
}

// specs are an entry's (or its canary's) kind settings as given, read through Parse (so an
// image recipe's defaults and checks are RECIPE_JSON's) and ParseRecords.
type specs struct{ image, records json.RawMessage }

func (s specs) parse(at string) (img *Recipe, rec *Records, err error) {
	if len(s.image) > 0 {
		r, err := Parse(s.image)
		if err != nil {
			return nil, nil, fmt.Errorf("%simage: %w", at, err)
		}
		img = &r
	}
	if len(s.records) > 0 {
		r, err := ParseRecords(s.records)
		if err != nil {
			return nil, nil, fmt.Errorf("%srecords: %w", at, err)
		}
		rec = &r
	}
	return img, rec, nil
}

// Validate reports every problem of the routing, each naming its entry.
func (rs Routes) Validate() error {
	var errs []error
	if len(rs.Recipes) == 0 {
		errs = append(errs, errors.New("recipes: want at least one recipe"))
	}
	if rs.Unmatched != "" && rs.Unmatched != UnmatchedSkip && rs.Unmatched != UnmatchedQuarantine {
		errs = append(errs, fmt.Errorf("unmatched: %q: want skip or quarantine", rs.Unmatched))
	}
	seen := map[string]bool{}
	catchAll := ""
	for i, e := range rs.Recipes {
		at := fmt.Sprintf("recipes[%d]%s", i, quotedName(e.Name))
		if catchAll != "" {
			errs = append(errs, fmt.Errorf("%s: never reached: %q before it matches every file", at, catchAll))
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("%s: name: used twice", at))
		}
		seen[e.Name] = true
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		}
		if e.Match.Prefix == "" && e.Match.Glob == "" && len(e.Match.Types) == 0 {
			catchAll = e.Name
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem of one entry, each naming its field.
func (e Entry) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if !namePattern.MatchString(e.Name) {
		bad("name", "%q: want 1-32 of a-z 0-9 _ -, starting with a letter or digit", e.Name)
	}
	specs := map[Kind]bool{KindImage: e.Image != nil, KindRecords: e.Records != nil, KindPassthrough: e.Passthrough != nil}
	switch e.Kind {
	case KindImage, KindRecords:
		if !specs[e.Kind] {
			bad(string(e.Kind), "a %s recipe needs its %q settings", e.Kind, e.Kind)
		}
	case KindPassthrough:
	default:
		bad("kind", "%q: want image, records or passthrough", e.Kind)
	}
	for k, given := range specs {
		if given && k != e.Kind {
			bad(string(k), "given for a %s recipe", e.Kind)
		}
	}
	if e.MaxBytes < 0 || e.MaxBytes > 5<<40 {
		bad("max_bytes", "%d: want 0 (the default) to 5 TiB", e.MaxBytes)
	}
	if e.Match.Glob != "" && !doublestar.ValidatePattern(e.Match.Glob) {
		bad("match.glob", "%q is not a valid pattern", e.Match.Glob)
	}
	for j, t := range e.Match.Types {
		if !mimePattern.MatchString(t) {
			bad(fmt.Sprintf("match.types[%d]", j), "%q: want a content type (image/png) or a family (image/*)", t)
		}
	}
	if e.Passthrough != nil && !headerValue.MatchString(e.Passthrough.CacheControl) {
		bad("passthrough.cache_control", "%q: want at most 256 printable ASCII characters", e.Passthrough.CacheControl)
	}
	if c := e.Canary; c != nil {
		if c.Percent <= 0 || c.Percent > 100 {
			bad("canary.percent", "%g: want more than 0, at most 100", c.Percent)
		}
		if err := e.CanaryEntry().Validate(); err != nil {
			bad("canary", "%w", err)
		} else if e.CanaryEntry().Version() == e.Version() {
			bad("canary", "its settings make the recipe's own version: nothing to try")
		}
	}
	return errors.Join(errs...)
}

var mimePattern = regexp.MustCompile(`^[a-z]+/(\*|[a-z0-9][a-z0-9.+-]*)$`)

// MatchesKey reports whether the key-based part of the match holds.
func (m Match) MatchesKey(key string) bool {
	if !strings.HasPrefix(key, m.Prefix) {
		return false
	}
	if m.Glob == "" {
		return true
	}
	ok, err := doublestar.Match(m.Glob, key)
	return err == nil && ok
}

// MatchesType reports whether a detected content type is one the match takes (any, when it
// names none).
func (m Match) MatchesType(contentType string) bool {
	if len(m.Types) == 0 {
		return true
	}
	for _, t := range m.Types {
		if family, ok := strings.CutSuffix(t, "/*"); ok && strings.HasPrefix(contentType, family+"/") || t == contentType {
			return true
		}
	}
	return false
}

// Version identifies what the entry makes of a file: a hash of its kind and settings (not its
// name or match), and of extra inputs that change the output. An image entry's version is its
// image recipe's, so the single-recipe configuration keeps the versions it always had.
func (e Entry) Version(extra ...[]byte) string {
	if e.Kind == KindImage && e.Image != nil {
		return e.Image.Version(extra...)
	}
	canon, _ := json.Marshal(struct {
		Kind        Kind         `json:"kind"`
		Records     *Records     `json:"records,omitempty"`
		Passthrough *Passthrough `json:"passthrough,omitempty"`
	}{e.Kind, e.Records, e.Passthrough})
	h := sha256.Sum256(canon)
	return hex.EncodeToString(h[:])[:16]
}

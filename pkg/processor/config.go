package processor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// Config is the processor's configuration, read from the environment.
type Config struct {
	StateTable       string
	OutputBucket     string
	OutputPrefix     string // manifests and renditions: <prefix><seg>/manifest.json, <prefix><seg>/<generation>/<name>.<ext>
	TempPrefix       string // in OutputBucket: <prefix><generation>/<seg>/<name>.<ext>
	QuarantineBucket string
	QuarantinePrefix string // <prefix><seg>/<generation>/source and .../report.json
	Limits           media.Limits
	MaxAttempts      int
	// RetriesPerAttempt: how many times an attempt retries its work after a transient failure
	// the SDK's own retries did not absorb, before it records FAILED for the trigger to retry.
	RetriesPerAttempt int
	StateTTL          time.Duration
	// DeadlineMargin is kept free before the Lambda deadline: no step starts inside it, so a
	// stopped attempt still has time to record FAILED and release its claim.
	DeadlineMargin time.Duration
	// RemoveOutputs: an ObjectRemoved event deletes the source's outputs (renditions, manifest,
	// quarantine copy) and leaves a DELETED record. Off, removals are ignored.
	RemoveOutputs bool
	// Recipe is the one image recipe of a deployment configured by RECIPE_JSON (or nothing);
	// Routes, from RECIPES_JSON, the named recipes of one routed by key and type. Routing()
	// is the one the processor runs.
	Recipe recipe.Recipe
	Routes *recipe.Routes
	// CommitWindow is the lease a claim must have left to commit (swap the manifest, write a
	// quarantine report); the commit's requests are bounded by it, and a Lambda's lease runs two
	// windows past its deadline. Not read from the environment: DefaultCommitWindow in
	// production, shorter in tests that kill workers.
	CommitWindow time.Duration
	// QueueURL is the SQS queue the processor is fed from (optional): a message that finds its
	// object claimed by another worker is made visible again after a short, jittered delay
	// instead of the queue's whole visibility timeout.
	QueueURL string
	// EventBus is the EventBridge bus (name or ARN) each outcome is announced on (pkg/announce);
	// "" announces nothing.
	EventBus string
	// Dedupe: a source whose bytes another source already rendered with this recipe (the
	// content index) publishes copies of that twin's renditions instead of rendering.
	Dedupe bool
	// Distribution is the CloudFront distribution in front of the output bucket whose cached
	// manifest an overwrite or removal invalidates (pkg/cdn); "" for none.
	Distribution string
}

// Routing is the recipes the processor routes by: RECIPES_JSON's, else the one image recipe.
func (c Config) Routing() recipe.Routes {
	if c.Routes != nil {
		return *c.Routes
	}
	return recipe.Single(c.Recipe)
}

// Announces reports whether outcomes are announced downstream (a bus, a CDN), so that one
// committed but not announced is something to repair.
func (c Config) Announces() bool { return c.EventBus != "" || c.Distribution != "" }

// Defaults for the optional variables.
const (
	DefaultOutputPrefix       = "renditions/"
	DefaultTempPrefix         = "tmp/"
	DefaultQuarantinePrefix   = "quarantine/"
	DefaultMaxBytes           = 50 << 20
	DefaultMaxPixels          = 40_000_000
	DefaultMaxHEICPixels      = 13_000_000 // a 12 MP phone photo, within 512 MB (23 B/pixel)
	DefaultMaxAVIFPixels      = 6_000_000  // within 512 MB (70 B/pixel)
	DefaultMaxAnimationFrames = 1000
	DefaultMaxAttempts        = 5
	DefaultRetriesPerAttempt  = 2
	DefaultDeadlineMarginMS   = 5000
	DefaultCommitWindow       = 30 * time.Second
)

// maxPrefixBytes bounds the key prefixes, so that every derived key keeps room for the source key.
const maxPrefixBytes = 256

// LoadConfig reads the configuration from getenv (os.Getenv in production), reporting every
// problem at once, each naming its variable and the expected format.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name, def string, required bool) string {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			if required {
				errs = append(errs, fmt.Errorf("%s is required", name))
			}
			return def
		}
		return v
	}
	num := func(name string, def, lo, hi int64) int64 {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", name, v, lo, hi))
			return def
		}
		return n
	}
	boolean := func(name string, def bool) bool {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
			return def
		}
		return b
	}
	prefix := func(name, def string) string {
		v := str(name, def, false)
		if !strings.HasSuffix(v, "/") || strings.HasPrefix(v, "/") || len(v) > maxPrefixBytes {
			errs = append(errs, fmt.Errorf("%s=%q: want a key prefix of at most %d bytes, ending in / and not starting with one", name, v, maxPrefixBytes))
		}
		return v
	}
	c := Config{
		StateTable:       str("STATE_TABLE", "", true),
		OutputBucket:     str("OUTPUT_BUCKET", "", true),
		OutputPrefix:     prefix("OUTPUT_PREFIX", DefaultOutputPrefix),
		TempPrefix:       prefix("TEMP_PREFIX", DefaultTempPrefix),
		QuarantineBucket: str("QUARANTINE_BUCKET", "", true),
		QuarantinePrefix: prefix("QUARANTINE_PREFIX", DefaultQuarantinePrefix),
		Limits: media.Limits{
			MaxBytes:      num("MAX_BYTES", DefaultMaxBytes, 1, 5<<30),
			MaxPixels:     num("MAX_PIXELS", DefaultMaxPixels, 1, 1_000_000_000),
			MaxHEICPixels: num("MAX_HEIC_PIXELS", DefaultMaxHEICPixels, 0, 1_000_000_000),
			MaxAVIFPixels: num("MAX_AVIF_PIXELS", DefaultMaxAVIFPixels, 0, 1_000_000_000),
			// Frames of an animation the recipe preserves; all its composed frames together are
			// held to MAX_PIXELS too.
			MaxAnimationFrames: num("MAX_ANIMATION_FRAMES", DefaultMaxAnimationFrames, 1, 100_000),
		},
		MaxAttempts:       int(num("MAX_ATTEMPTS", DefaultMaxAttempts, 1, 100)),
		RetriesPerAttempt: int(num("RETRIES_PER_ATTEMPT", DefaultRetriesPerAttempt, 0, 10)),
		StateTTL:          time.Duration(num("STATE_TTL_DAYS", 0, 0, 3650)) * 24 * time.Hour,
		DeadlineMargin:    time.Duration(num("DEADLINE_MARGIN_MS", DefaultDeadlineMarginMS, 0, 600_000)) * time.Millisecond,
		RemoveOutputs:     boolean("REMOVE_OUTPUTS", true),
		QueueURL:          str("QUEUE_URL", "", false),
		EventBus:          str("EVENT_BUS_NAME", "", false),
		Distribution:      str("CLOUDFRONT_DISTRIBUTION_ID", "", false),
		Dedupe:            boolean("DEDUPE", false),
		CommitWindow:      DefaultCommitWindow,
		Recipe:            recipe.Default(),
	}
	if raw := strings.TrimSpace(getenv("RECIPE_JSON")); raw != "" {
		r, err := recipe.Parse([]byte(raw))
		if err != nil {
			errs = append(errs, fmt.Errorf("RECIPE_JSON: %w", err))
		} else {
			c.Recipe = r
		}
	}
	if raw := strings.TrimSpace(getenv("RECIPES_JSON")); raw != "" {
		rs, err := recipe.ParseRoutes([]byte(raw))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("RECIPES_JSON: %w", err))
		case strings.TrimSpace(getenv("RECIPE_JSON")) != "":
			errs = append(errs, errors.New("RECIPE_JSON and RECIPES_JSON are both set: give the one image recipe, or the named recipes (an image entry of which takes RECIPE_JSON's content)"))
		default:
			c.Routes = &rs
		}
	}
	if strings.ContainsFunc(c.EventBus, unicode.IsSpace) || len(c.EventBus) > 1600 {
		errs = append(errs, fmt.Errorf("EVENT_BUS_NAME=%q: want an EventBridge bus name or ARN", c.EventBus))
	}
	if strings.ContainsFunc(c.Distribution, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < '0' || r > '9') }) {
		errs = append(errs, fmt.Errorf("CLOUDFRONT_DISTRIBUTION_ID=%q: want a distribution id (capital letters and digits, as E2QWRUHAPOMQZL)", c.Distribution))
	}
	if c.OutputBucket != "" && c.OutputPrefix == c.TempPrefix {
		errs = append(errs, fmt.Errorf("OUTPUT_PREFIX and TEMP_PREFIX are both %q: they must differ", c.OutputPrefix))
	}
	return c, errors.Join(errs...)
}

// FromEnv is LoadConfig on the process environment.
func FromEnv() (Config, error) { return LoadConfig(os.Getenv) }

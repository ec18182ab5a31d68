package processor

import (
	"context"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// route is one recipe as the processor runs it: the entry, its version, and what runs it.
type route struct {
	entry    recipe.Entry
	version  string
	limits   media.Limits     // MaxBytes is the entry's own
	renderer *render.Renderer // image
	plan     *records.Plan    // records
	canary   *route           // the canary's settings, for the keys it picks
}

// take is the route a file at key takes: the canary's when the recipe has one that picks key.
func (rt *route) take(key string) *route {
	if rt.canary != nil && rt.entry.Canary.Picks(key) {
		return rt.canary
	}
	return rt
}

// image is the route's image recipe (the zero recipe for another kind).
func (rt *route) image() recipe.Recipe {
	if rt.entry.Image == nil {
		return recipe.Recipe{}
	}
	return *rt.entry.Image
}

// noRecipe is the route of an unmatched upload that the routing quarantines: it claims the
// object like any other and rejects it as no_recipe.
var noRecipe = &route{entry: recipe.Entry{Name: "no_recipe"}, version: "no_recipe"}

// router picks an upload's recipe: the first whose match holds.
type router struct {
	routes    []*route
	unmatched string
	sniffs    bool // some match names content types: the first bytes are read to route
}

func newRouter(routes []*route, unmatched string) router {
	rt := router{routes: routes, unmatched: unmatched}
	for _, r := range routes {
		rt.sniffs = rt.sniffs || len(r.entry.Match.Types) > 0
	}
	return rt
}

// pick routes key, whose detected content type detect tells (read once, only if a match
// needs it): nil for an unmatched upload the routing skips.
func (rt router) pick(key string, detect func() (string, error)) (*route, error) {
	var (
		ct    string
		known bool
	)
	for _, r := range rt.routes {
		m := r.entry.Match
		if !m.MatchesKey(key) {
			continue
		}
		if len(m.Types) > 0 && !known {
			var err error
			if ct, err = detect(); err != nil {
				return nil, err
			}
			known = true
		}
		if m.MatchesType(ct) {
			return r.take(key), nil
		}
	}
	if rt.unmatched == recipe.UnmatchedQuarantine {
		return noRecipe, nil
	}
	return nil, nil
}

// current reports whether version is one a file at key may have been made with by the routing
// now: the version of a recipe whose key match holds (which of them, when matches name types,
// only the file's bytes tell). A backfill reprocesses a key whose record is not current.
func (rt router) current(key, version string) bool {
	for _, r := range rt.routes {
		if !r.entry.Match.MatchesKey(key) {
			continue
		}
		if r.take(key).version == version {
			return true
		}
		if len(r.entry.Match.Types) == 0 {
			return false // a later recipe is never reached
		}
	}
	return rt.unmatched == recipe.UnmatchedQuarantine && version == noRecipe.version
}

// made is the route that made a record's outputs, for a removal (which has no file to route):
// the recipe of that name, else the first whose key match holds (a record from before names
// were kept), else one that makes nothing (the reconciler finds what another recipe made).
func (rt router) made(name, key string) *route {
	for _, r := range rt.routes {
		if r.entry.Name == name {
			return r.take(key)
		}
	}
	for _, r := range rt.routes {
		if name == "" && r.entry.Match.MatchesKey(key) {
			return r.take(key)
		}
	}
	return noRecipe
}

// sniffBytes is how much of a file routing reads to detect its type.
const sniffBytes = 512

// contentType detects a file's type from its first bytes: an image format sluice decodes by
// its own sniffing (HEIC and AVIF included), anything else by net/http's (text/plain,
// application/pdf, application/zip…), without parameters.
func contentType(head []byte) string {
	if f, ok := media.Sniff(head); ok {
		return "image/" + string(f)
	}
	t, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	return t
}

// detect reads the first bytes of src and tells its type.
func (r *run) detect(src storage.Object) (string, error) {
	var head []byte
	err := r.stage("Sniff", func(ctx context.Context) (err error) {
		head, err = r.p.objects.Peek(ctx, src, sniffBytes)
		return err
	})
	return contentType(head), err
}

// file is one output of a recipe: its name and extension.
type file struct{ name, ext string }

// files lists every output a recipe may make of sourceKey: both extensions of an "auto"
// rendition, whose choice depends on the source.
func (rt *route) files(sourceKey string) []file {
	switch rt.entry.Kind {
	case recipe.KindRecords:
		ext, _ := rt.rowsFile()
		return []file{{rowsName, ext}, {rejectedName, "jsonl"}}
	case recipe.KindPassthrough:
		return []file{{passthroughName, passthroughExt(sourceKey)}}
	}
	var out []file
	for _, rd := range rt.image().Renditions {
		formats := []recipe.Format{rd.Format}
		if rd.Format == recipe.Auto {
			formats = []recipe.Format{recipe.JPEG, recipe.PNG}
		}
		for _, f := range formats {
			out = append(out, file{rd.Name, render.Output{Format: f}.Ext()})
		}
	}
	return out
}

// Output names of the streamed kinds.
const (
	rowsName        = "rows"     // the valid rows
	rejectedName    = "rejected" // the invalid rows' list
	passthroughName = "file"     // the file itself
)

// rowsFile is the valid rows' file extension and content type.
func (rt *route) rowsFile() (ext, contentType string) {
	switch out := rt.entry.Records.Output; {
	case out.Format == recipe.OutputParquet:
		return "parquet", "application/vnd.apache.parquet"
	case out.Gzip:
		return "jsonl.gz", "application/gzip"
	}
	return "jsonl", "application/x-ndjson"
}

// passthroughExt is the source key's extension when it is a plain one (letters and digits, at
// most 8), else "bin": the output key keeps what a browser or a tool goes by.
func passthroughExt(key string) string {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(key), "."))
	if ext == "" || len(ext) > 8 || strings.ContainsFunc(ext, func(c rune) bool { return (c < 'a' || c > 'z') && (c < '0' || c > '9') }) {
		return "bin"
	}
	return ext
}

// cache is the Cache-Control of what the recipe publishes (the defaults where it says none).
func (rt *route) cache() recipe.CacheControl {
	switch {
	case rt.entry.Image != nil:
		return rt.entry.Image.CacheControl
	case rt.entry.Passthrough != nil:
		return recipe.CacheControl{Renditions: rt.entry.Passthrough.CacheControl}
	}
	return recipe.CacheControl{}
}

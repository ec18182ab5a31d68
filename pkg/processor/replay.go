package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// RecipeDoc is a recipe as stored by its version: the entry that made an output, so that any
// output can be traced to, and made again with, exactly that recipe.
type RecipeDoc struct {
	Version string       `json:"version"`
	Entry   recipe.Entry `json:"recipe"`
}

// RecipeDoc is where the recipe of version is stored, in the output bucket: beside the outputs'
// segments, under a name no segment takes ("_/" begins a hashed one, ParseOutput reads none).
func (k Keys) RecipeDoc(version string) string {
	return k.cfg.OutputPrefix + "_recipes/" + version + ".json"
}

// StoreRecipes writes each recipe's document by its version, once (If-None-Match: the first
// writer's stays; a version names its content, so any writer's is the same). The Lambda does it
// at cold start, before it processes anything.
func (p *Processor) StoreRecipes(ctx context.Context) error {
	var all []*route
	for _, rt := range p.routes.routes {
		all = append(all, rt)
		if rt.canary != nil {
			all = append(all, rt.canary)
		}
	}
	for _, rt := range all {
		e := rt.entry
		e.Canary = nil // the document is what made the outputs of its version
		body, err := json.MarshalIndent(RecipeDoc{Version: rt.version, Entry: e}, "", "  ")
		if err != nil {
			return err
		}
		_, err = p.objects.Put(ctx, storage.Put{
			Bucket: p.cfg.OutputBucket, Key: p.Keys().RecipeDoc(rt.version), Body: body,
			ContentType: "application/json", Only: storage.Precondition{IfAbsent: true},
		})
		if err != nil && !errors.Is(err, storage.ErrPreconditionFailed) {
			return fmt.Errorf("store recipe %q: %w", rt.entry.Name, err)
		}
	}
	return nil
}

// Canary tells the versions of the recipe name: its own (baseline) and its canary's ("" when it
// has none); ok is false when no recipe has that name.
func (p *Processor) Canary(name string) (baseline, canary string, ok bool) {
	for _, rt := range p.routes.routes {
		if rt.entry.Name == name {
			if rt.canary != nil {
				canary = rt.canary.version
			}
			return rt.version, canary, true
		}
	}
	return "", "", false
}

// Promoted is the routing configuration with the canary of recipe name made its settings (for
// RECIPES_JSON: deploy it, and a backfill reprocesses the files the baseline made).
func (p *Processor) Promoted(name string) (recipe.Routes, error) {
	rs := p.cfg.Routing()
	rs.Recipes = slices.Clone(rs.Recipes)
	for i, e := range rs.Recipes {
		if e.Name == name && e.Canary != nil {
			rs.Recipes[i] = e.Promoted()
			return rs, nil
		}
	}
	return recipe.Routes{}, fmt.Errorf("no recipe %q with a canary", name)
}

// Replayed is what a replay made of one published output.
type Replayed struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Published string `json:"published_sha256"` // "" when the manifest lists no output of that name
}

// Replay is a published source made again: with the recipe its manifest names (read from its
// stored document) and the source version it describes (or versionID).
type Replay struct {
	Key           string     `json:"key"`
	SourceVersion string     `json:"source_version"`
	Recipe        string     `json:"recipe"`
	RecipeVersion string     `json:"recipe_version"`
	Outputs       []Replayed `json:"outputs"`
	// Same: every output the manifest lists was made again, byte for byte.
	Same bool `json:"same"`
}

// Replay makes the outputs of the published source key again, in this process, from the stored
// recipe document of the version its manifest names and the source version it describes (or
// versionID, in a versioned bucket), and compares them with the published ones. Renders are
// deterministic: a difference is a bug, or a build whose embedded inputs differ (which the
// recipe version check reports first).
func (p *Processor) Replay(ctx context.Context, key, versionID string) (Replay, error) {
	_, body, err := p.objects.Read(ctx, p.cfg.OutputBucket, p.Keys().Manifest(key), maxMutableBytes)
	if err != nil {
		return Replay{}, fmt.Errorf("manifest of %s: %w", key, err)
	}
	m, err := ReadManifest(body)
	if err != nil {
		return Replay{}, fmt.Errorf("manifest of %s: %w", key, err)
	}
	rt, err := p.storedRoute(ctx, m.RecipeVersion)
	if err != nil {
		return Replay{}, err
	}
	src := storage.Object{Bucket: m.Source.Bucket, Key: m.Source.Key, VersionID: m.Source.VersionID, ETag: m.Source.ETag, Size: m.Source.Size}
	if versionID != "" && versionID != src.VersionID {
		src.VersionID, src.ETag = versionID, ""
	}
	made, err := p.remake(ctx, rt, src)
	if err != nil {
		return Replay{}, fmt.Errorf("replay %s: %w", key, err)
	}
	rp := Replay{Key: key, SourceVersion: contentVersion(src), Recipe: rt.entry.Name, RecipeVersion: rt.version, Outputs: made, Same: len(made) == len(m.Outputs)}
	for i := range rp.Outputs {
		if j := slices.IndexFunc(m.Outputs, func(o state.Output) bool { return o.Name == rp.Outputs[i].Name }); j >= 0 {
			rp.Outputs[i].Published = m.Outputs[j].SHA256
		}
		rp.Same = rp.Same && rp.Outputs[i].Published == rp.Outputs[i].SHA256
	}
	return rp, nil
}

// storedRoute makes ready the recipe stored as version, checking that this build makes the
// same version of it (its embedded inputs, the default watermark, are part of an image
// recipe's version).
func (p *Processor) storedRoute(ctx context.Context, version string) (*route, error) {
	_, body, err := p.objects.Read(ctx, p.cfg.OutputBucket, p.Keys().RecipeDoc(version), maxMutableBytes)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", version, err)
	}
	var doc RecipeDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("recipe %s: %w", version, err)
	}
	rt, err := ready(ctx, p.cfg, p.objects, doc.Entry)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", version, err)
	}
	if rt.version != version {
		return nil, fmt.Errorf("recipe %s: this build makes version %s of it (its embedded watermark or a default differs): it cannot replay this output", version, rt.version)
	}
	return rt, nil
}

// remake makes src's outputs with rt, hashing them: what an attempt would publish.
func (p *Processor) remake(ctx context.Context, rt *route, src storage.Object) ([]Replayed, error) {
	r := &run{p: p, ctx: ctx, route: rt, log: p.log, m: metrics.NewSet()}
	if rt.plan != nil {
		body, err := p.objects.Stream(ctx, src)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		rows, rejected := sha256.New(), sha256.New()
		var rowsN, rejectedN counter
		if _, err := rt.plan.Run(body, io.MultiWriter(rows, &rowsN), io.MultiWriter(rejected, &rejectedN)); err != nil {
			return nil, err
		}
		return []Replayed{
			{Name: rowsName, Size: int64(rowsN), SHA256: hex.EncodeToString(rows.Sum(nil))},
			{Name: rejectedName, Size: int64(rejectedN), SHA256: hex.EncodeToString(rejected.Sum(nil))},
		}, nil
	}
	if rt.entry.Kind == recipe.KindPassthrough {
		return p.rehash(ctx, src)
	}
	data, err := p.objects.Get(ctx, src, rt.limits.MaxBytes)
	if err != nil {
		return nil, err
	}
	img, anim, err := r.decode(data)
	if err != nil {
		return nil, err
	}
	if err := r.colorPolicy(img.Color); err != nil {
		return nil, err
	}
	outs, err := r.render(ctx, img, anim)
	if err != nil {
		return nil, err
	}
	made := make([]Replayed, 0, len(outs))
	for _, o := range outs {
		made = append(made, hashed(o.Name, o.Body))
	}
	return made, nil
}

// rehash is a passthrough's output made again: the source's bytes, hashed as they stream.
func (p *Processor) rehash(ctx context.Context, src storage.Object) ([]Replayed, error) {
	body, err := p.objects.Stream(ctx, src)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return nil, err
	}
	return []Replayed{{Name: passthroughName, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}}, nil
}

func hashed(name string, b []byte) Replayed {
	sum := sha256.Sum256(b)
	return Replayed{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

// counter counts bytes written.
type counter int64

func (c *counter) Write(b []byte) (int, error) {
	*c += counter(len(b))
	return len(b), nil
}

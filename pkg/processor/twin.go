package processor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// CopiedFrom names, in a manifest, the twin whose renditions were copied instead of rendered:
// a source with the same bytes, rendered with the same recipe.
type CopiedFrom struct {
	Bucket     string `json:"bucket"`
	Key        string `json:"key"`
	Generation string `json:"generation"`
}

// errTwinGone: the twin's renditions are not what its manifest lists any more (its source was
// removed or rendered again since).
var errTwinGone = errors.New("the twin's renditions are gone")

// fromTwin publishes, into this claim's generation, copies of the renditions of the source's
// twin (DEDUPE): the source the content index names for these bytes (sum) under this recipe,
// whose published manifest still describes them. Each copy carries this claim's metadata and is
// checked (HEAD) against the size and SHA-256 the twin's manifest lists. ok is false when there
// is no twin, or its renditions are gone: then the source is rendered, and offered as the twin.
// Copies made before a twin turned out gone are overwritten by the rendering (same keys).
func (r *run) fromTwin(src storage.Object, sum string) (outs []state.Output, ok bool, err error) {
	if !r.p.cfg.Dedupe {
		return nil, false, nil
	}
	t, found, err := r.p.states.TwinOf(r.ctx, r.route.version, sum)
	if err != nil || !found || (t.Bucket == src.Bucket && t.Key == src.Key) {
		return nil, false, err
	}
	m, err := r.twinManifest(t, sum)
	if err == nil {
		outs, err = r.copyAll(src, m)
	}
	if errors.Is(err, errTwinGone) {
		r.twin.stale = &t
		r.log.Info("the content's twin is gone; rendering", "twin", t.Key, "err", err)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r.learnt.sha256 = sum
	r.learnt.info = media.Info{Format: media.Format(m.Source.Format), Width: m.Source.Width, Height: m.Source.Height}
	r.learnt.color, r.learnt.rights = m.Source.Color, m.Source.Rights
	r.twin.copied = &CopiedFrom{Bucket: t.Bucket, Key: t.Key, Generation: m.Generation}
	r.m.Add("DedupeHits", metrics.Count, 1)
	for _, o := range outs {
		r.m.Add("BytesNotRendered", metrics.Bytes, float64(o.Size))
	}
	return outs, true, nil
}

// twinManifest reads the twin's manifest: errTwinGone unless it describes these bytes (sum)
// rendered with this recipe.
func (r *run) twinManifest(t state.Twin, sum string) (Manifest, error) {
	_, body, err := r.p.objects.Read(r.ctx, r.p.cfg.OutputBucket, r.p.Keys().Manifest(t.Key), maxMutableBytes)
	if errors.Is(err, storage.ErrNotFound) {
		return Manifest{}, fmt.Errorf("no manifest for %s: %w", t.Key, errTwinGone)
	}
	if err != nil {
		return Manifest{}, err
	}
	m, err := ReadManifest(body)
	if err != nil || m.Source.Bucket != t.Bucket || m.Source.SHA256 != sum || m.RecipeVersion != r.route.version {
		return Manifest{}, fmt.Errorf("the manifest of %s describes other bytes or another recipe (%v): %w", t.Key, err, errTwinGone)
	}
	return m, nil
}

// copyAll copies each rendition the twin's manifest lists into this claim's generation.
func (r *run) copyAll(src storage.Object, m Manifest) ([]state.Output, error) {
	outs := make([]state.Output, 0, len(m.Outputs))
	for _, o := range m.Outputs {
		if err := r.ctx.Err(); err != nil {
			return nil, fmt.Errorf("deadline before copying %s: %w", o.Name, err)
		}
		out, err := r.copyRendition(src, o)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// copyRendition copies one of the twin's renditions to this claim's key for it, with this
// claim's metadata, and checks the copy.
func (r *run) copyRendition(src storage.Object, o state.Output) (state.Output, error) {
	kind := render.Output{Format: recipe.Format(o.Format)}
	final := r.p.Keys().Final(src.Key, r.rec.ClaimToken, o.Name, kind.Ext())
	bucket := r.p.cfg.OutputBucket
	_, err := r.p.objects.Copy(r.ctx, storage.Copy{
		SrcBucket: bucket, SrcKey: o.Key, DstBucket: bucket, DstKey: final,
		Metadata: r.metadata(src), ContentType: kind.ContentType(), CacheControl: r.route.cache().RenditionsCache(),
	})
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrPreconditionFailed) {
		return state.Output{}, fmt.Errorf("%s: %w", o.Key, errTwinGone)
	}
	if err != nil {
		return state.Output{}, err
	}
	head, err := r.p.objects.Head(r.ctx, bucket, final)
	if err != nil {
		return state.Output{}, err
	}
	if head.Size != o.Size || !strings.EqualFold(head.SHA256, o.SHA256) {
		return state.Output{}, fmt.Errorf("copy of %s: %d bytes sha256 %s, the twin lists %d bytes %s: %w", o.Key, head.Size, head.SHA256, o.Size, o.SHA256, errTwinGone)
	}
	o.Key = final
	return o, nil
}

// offerTwin names this source, which rendered its bytes and committed them, the twin of those
// bytes under this recipe, where the content index names none or a twin found gone. Losing that
// race, or failing, costs only a later rendering: it is logged, not returned.
func (r *run) offerTwin(src storage.Object) {
	if !r.p.cfg.Dedupe || r.twin.copied != nil || r.learnt.sha256 == "" {
		return
	}
	err := r.p.states.OfferTwin(r.ctx, r.route.version, r.learnt.sha256, state.Twin{Bucket: src.Bucket, Key: src.Key}, r.twin.stale)
	if err != nil && !errors.Is(err, state.ErrConflict) {
		r.log.Warn("not offered as its content's twin", "err", err)
	}
}

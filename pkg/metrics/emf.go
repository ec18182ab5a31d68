// Package metrics writes CloudWatch Embedded Metric Format lines: JSON objects on stdout that
// CloudWatch Logs turns into metrics, with no API call and no extra dependency.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every sluice metric.
const Namespace = "sluice"

// Unit of a metric value.
type Unit string

// Units used here.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
)

// Emitter writes one EMF document per Flush.
type Emitter struct {
	mu       sync.Mutex
	w        io.Writer
	function string
	now      func() time.Time
}

// New writes to w with the dimension Function=function.
func New(w io.Writer, function string) *Emitter {
	return &Emitter{w: w, function: function, now: time.Now}
}

// Set is a batch of metric values to flush together.
type Set struct {
	values map[string]float64
	units  map[string]Unit
	recipe struct{ name, version string }
}

// NewSet starts an empty batch.
func NewSet() *Set { return &Set{values: map[string]float64{}, units: map[string]Unit{}} }

// Add adds v to the metric name.
func (s *Set) Add(name string, unit Unit, v float64) {
	s.values[name] += v
	s.units[name] = unit
}

// Recipe names the recipe the batch's object was routed to: its name becomes a second
// dimension set (Function, Recipe), so each recipe's metrics can be read apart, and its version
// a property of the log line (searchable, not a dimension: versions are many).
func (s *Set) Recipe(name, version string) {
	s.recipe.name, s.recipe.version = name, version
}

// Flush writes the batch as one EMF line; an empty batch writes nothing.
func (e *Emitter) Flush(s *Set) error {
	if len(s.values) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.values))
	for n := range s.values {
		names = append(names, n)
	}
	sort.Strings(names)
	type metric struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit"`
	}
	defs := make([]metric, 0, len(names))
	doc := map[string]any{"Function": e.function}
	for _, n := range names {
		defs = append(defs, metric{Name: n, Unit: s.units[n]})
		doc[n] = s.values[n]
	}
	dims := [][]string{{"Function"}}
	if s.recipe.name != "" {
		dims = append(dims, []string{"Function", "Recipe"})
		doc["Recipe"], doc["RecipeVersion"] = s.recipe.name, s.recipe.version
	}
	doc["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": dims,
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}

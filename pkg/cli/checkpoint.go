package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pkg/ops"
)

// checkpoint keeps a backfill's listing position in a local file, so a stopped run started again
// with the same options lists only what it had not reached. It is written at most every
// checkpointEvery and when the run ends, atomically (a temp file renamed), and removed when the
// backfill completes, so the next run starts from the beginning again.
type checkpoint struct {
	path string
	// what the position belongs to: a checkpoint of another backfill is refused
	Bucket string    `json:"bucket"`
	Prefix string    `json:"prefix"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	After  string    `json:"after"` // every object up to this key is handled

	mu      sync.Mutex
	written time.Time
}

const checkpointEvery = 2 * time.Second

// loadCheckpoint reads the checkpoint at path for opt, or starts one; it is an error if the file
// holds another backfill's position.
func loadCheckpoint(path string, opt ops.BackfillOptions) (*checkpoint, error) {
	c := &checkpoint{path: path, Bucket: opt.Bucket, Prefix: opt.Prefix, From: opt.From, To: opt.To}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	var saved checkpoint
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if saved.Bucket != c.Bucket || saved.Prefix != c.Prefix || !saved.From.Equal(c.From) || !saved.To.Equal(c.To) {
		return nil, fmt.Errorf("checkpoint %s is for another backfill (s3://%s/%s, from %v to %v): remove it or choose another file", path, saved.Bucket, saved.Prefix, saved.From, saved.To)
	}
	c.After = saved.After
	return c, nil
}

// advance notes the new position and writes it when the last write is old enough (ops calls it
// in order, with its lock held: a failed write only delays the checkpoint).
func (c *checkpoint) advance(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.After = key
	if time.Since(c.written) >= checkpointEvery {
		_ = c.writeLocked()
	}
}

// end records how the run ended: the position is saved when it stopped early, and the file
// removed when it completed.
func (c *checkpoint) end(completed bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if completed {
		if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return c.writeLocked()
}

func (c *checkpoint) writeLocked() error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".checkpoint-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	c.written = time.Now()
	return os.Rename(tmp.Name(), c.path)
}

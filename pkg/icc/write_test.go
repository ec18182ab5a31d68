package icc_test

import (
	"os"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
)

// SLUICE_WRITE_CMYK_PROFILE=path go test -run TestWriteCMYKProfile ./pkg/icc writes the test CMYK
// profile, as testdata/README.md's fixture commands use it.
func TestWriteCMYKProfile(t *testing.T) {
	path := os.Getenv("SLUICE_WRITE_CMYK_PROFILE")
	if path == "" {
		t.Skip("a fixture tool: set SLUICE_WRITE_CMYK_PROFILE")
	}
	if err := os.WriteFile(path, icctest.CMYK(), 0o644); err != nil {
		t.Fatal(err)
	}
}

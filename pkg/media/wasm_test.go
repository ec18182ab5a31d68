package media_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// go build, go test and go run give the same program as Lambda's build, whatever the tags: a
// program that decodes the HEIC and AVIF samples and WebP-encodes them prints the same pixels
// and bytes built with -tags nodynamic (Lambda's build) and without (where, with libheif-dev,
// libavif-dev and libwebp-dev installed, gen2brain's codecs would load the system libraries and
// decode differently: libheif 1.15 fails on the HEIC sample).
func TestCodecsAreLambdasWhateverTheBuildTags(t *testing.T) {
	samples := []string{"../../testdata/images/elephants.heic", "../../testdata/images/elephants.avif", "../../testdata/images/elephants.jpg"}
	run := func(goflags string) string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"run", "./testdata/decodesum"}, samples...)...)
		cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go run (GOFLAGS=%q): %v\n%s", goflags, err, out)
		}
		return string(out)
	}
	lambda, plain := run("-tags=nodynamic"), run("")
	if strings.Contains(lambda, "error") || strings.Count(lambda, "\n") != len(samples) {
		t.Fatalf("Lambda's build:\n%s", lambda)
	}
	if plain != lambda {
		t.Errorf("a build without -tags nodynamic differs from Lambda's:\nplain:\n%s\nlambda:\n%s", plain, lambda)
	}
	for _, lib := range []string{"libheif.so", "libavif.so", "libwebp.so"} {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/" + lib); err == nil {
			t.Logf("%s is installed here: the plain build had a system library to load", lib)
		}
	}
}

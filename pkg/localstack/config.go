package localstack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Pinned versions of the local servers. Changing one makes the next `up` reinstall it.
const (
	MinioModule       = "github.com/minio/minio"
	MinioVersion      = "v0.0.0-20260212201848-7aac2a2c5b7c"
	DynamoNPMPackage  = "amplify-dynamodb-simulator"
	DynamoNPMVersion  = "2.9.30"
	javaDebianPackage = "openjdk-17-jre-headless"
	// AWS's Lambda Runtime Interface Emulator: what `sam local invoke` runs inside its container.
	RIEModule  = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// Config says where the local stack lives and how it is reached.
type Config struct {
	Dir  string // cache folder: binaries, data, logs, pid files, env file
	Host string // loopback address every server binds to and clients use
	// S3Bind is the address MinIO listens on: Host, unless SLUICE_LOCAL_S3_BIND says otherwise
	// (0.0.0.0 lets a `sam local invoke` container reach it through host.docker.internal).
	S3Bind      string
	S3Port      int
	ConsolePort int
	DynamoPort  int
	HubPort     int
	Region      string
	AccessKey   string
	SecretKey   string
}

// DefaultConfig places the cache under root/infra/local/.cache (git-ignored).
func DefaultConfig(root string) Config {
	return Config{
		Dir:         filepath.Join(root, "infra", "local", ".cache"),
		Host:        "127.0.0.1",
		S3Bind:      "127.0.0.1",
		S3Port:      9900,
		ConsolePort: 9901,
		DynamoPort:  9902,
		HubPort:     9903,
		Region:      "us-east-1",
		AccessKey:   "sluicelocal",
		SecretKey:   "sluicelocalsecret",
	}
}

// LoadConfig applies the SLUICE_LOCAL_* environment overrides to DefaultConfig and validates.
func LoadConfig(root string) (Config, error) {
	c := DefaultConfig(root)
	var errs []error
	if v := os.Getenv("SLUICE_LOCAL_DIR"); v != "" {
		c.Dir = v
	}
	if v := os.Getenv("SLUICE_LOCAL_S3_BIND"); v != "" {
		if net.ParseIP(v) == nil {
			errs = append(errs, fmt.Errorf("SLUICE_LOCAL_S3_BIND=%q: want an IP address, like 0.0.0.0", v))
		}
		c.S3Bind = v
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{
		{"SLUICE_LOCAL_S3_PORT", &c.S3Port},
		{"SLUICE_LOCAL_CONSOLE_PORT", &c.ConsolePort},
		{"SLUICE_LOCAL_DYNAMODB_PORT", &c.DynamoPort},
		{"SLUICE_LOCAL_HUB_PORT", &c.HubPort},
	} {
		v := os.Getenv(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q: want a TCP port number 1-65535", p.name, v))
			continue
		}
		*p.dst = n
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Running is the configuration of the stack this checkout (root) has running, as its env file
// records it (ports included, whatever the environment says now), so that a command acting on
// "the local stack" never reaches another checkout's stack on the default ports. Without the env
// file (the stack was never started, or stopped) it refuses, naming where the stack would answer.
func Running(root string) (Config, error) {
	c, err := LoadConfig(root)
	if err != nil {
		return Config{}, err
	}
	b, err := os.ReadFile(c.EnvFile())
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("this checkout's local stack (%s) is not running: no %s; start it with `make local-up` (it would answer on %s and %s)",
			root, c.EnvFile(), c.S3Endpoint(), c.DynamoEndpoint())
	}
	if err != nil {
		return Config{}, err
	}
	ports := map[string]*int{"SLUICE_LOCAL_S3_PORT": &c.S3Port, "SLUICE_LOCAL_CONSOLE_PORT": &c.ConsolePort,
		"SLUICE_LOCAL_DYNAMODB_PORT": &c.DynamoPort, "SLUICE_LOCAL_HUB_PORT": &c.HubPort}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		if dst, ok := ports[k]; ok {
			if n, err := strconv.Atoi(v); err == nil {
				*dst = n
			}
		}
	}
	return c, c.Validate()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("cache dir %q: want an absolute path", c.Dir))
	}
	seen := map[int]string{}
	for name, p := range map[string]int{"S3": c.S3Port, "console": c.ConsolePort, "DynamoDB": c.DynamoPort, "hub": c.HubPort} {
		if other, dup := seen[p]; dup {
			errs = append(errs, fmt.Errorf("port %d is set for both %s and %s", p, name, other))
		}
		seen[p] = name
	}
	return errors.Join(errs...)
}

func (c Config) path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

// EnvFile is the file that `make` targets and tests read.
func (c Config) EnvFile() string { return c.path("local.env") }

// S3Endpoint is MinIO's S3 API address.
func (c Config) S3Endpoint() string { return fmt.Sprintf("http://%s:%d", c.Host, c.S3Port) }

// DynamoEndpoint is DynamoDB Local's address.
func (c Config) DynamoEndpoint() string { return fmt.Sprintf("http://%s:%d", c.Host, c.DynamoPort) }

// HubEndpoint is the notification hub's address.
func (c Config) HubEndpoint() string { return fmt.Sprintf("http://%s:%d", c.Host, c.HubPort) }

// Env is what the env file holds: endpoints, region and credentials for the AWS SDK and CLI.
func (c Config) Env() [][2]string {
	return [][2]string{
		{"AWS_ENDPOINT_URL_S3", c.S3Endpoint()},
		{"AWS_ENDPOINT_URL_DYNAMODB", c.DynamoEndpoint()},
		{"AWS_REGION", c.Region},
		{"AWS_DEFAULT_REGION", c.Region},
		{"AWS_ACCESS_KEY_ID", c.AccessKey},
		{"AWS_SECRET_ACCESS_KEY", c.SecretKey},
		{"AWS_EC2_METADATA_DISABLED", "true"},
		{"SLUICE_LOCAL_HUB", c.HubEndpoint()},
		{"SLUICE_LOCAL_S3_PORT", strconv.Itoa(c.S3Port)},
		{"SLUICE_LOCAL_CONSOLE_PORT", strconv.Itoa(c.ConsolePort)},
		{"SLUICE_LOCAL_DYNAMODB_PORT", strconv.Itoa(c.DynamoPort)},
		{"SLUICE_LOCAL_HUB_PORT", strconv.Itoa(c.HubPort)},
		{"SLUICE_LOCAL_NOTIFY_ARN", c.HubARN()},
		{"SLUICE_LOCAL_MINIO_LOG", c.path("logs", "minio.log")},
		{"SLUICE_LOCAL_DYNAMODB_LOG", c.path("logs", "dynamodb.log")},
	}
}

package localstack

import (
	"strings"
	"testing"
)

func TestLoadConfigOverrides(t *testing.T) {
	t.Setenv("SLUICE_LOCAL_S3_PORT", "9910")
	t.Setenv("SLUICE_LOCAL_S3_BIND", "0.0.0.0")
	c, err := LoadConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.S3Port != 9910 || c.S3Bind != "0.0.0.0" || c.S3Endpoint() != "http://127.0.0.1:9910" {
		t.Fatalf("config %+v, endpoint %s", c, c.S3Endpoint())
	}
	t.Setenv("SLUICE_LOCAL_S3_BIND", "everywhere")
	t.Setenv("SLUICE_LOCAL_HUB_PORT", "70000")
	_, err = LoadConfig(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "SLUICE_LOCAL_S3_BIND") || !strings.Contains(err.Error(), "SLUICE_LOCAL_HUB_PORT") {
		t.Fatalf("err = %v, want both bad variables named", err)
	}
}

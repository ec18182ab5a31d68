// Package localstack installs, starts, checks and stops sluice's Docker-free local AWS stack:
// MinIO for S3, AWS's DynamoDB Local, and a small hub that routes MinIO's bucket notifications to
// per-bucket subscribers. Everything lives in one git-ignored cache folder; processes are tracked
// by the PIDs recorded there and are never looked up by name.
package localstack

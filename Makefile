# sluice: see README.md. `make demo` runs the main job locally; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE       := infra/local/.cache
SLUICE      := $(CACHE)/bin/sluice
BUILD_DIR   ?= $(CACHE)/build
FUNCTIONS   := $(notdir $(wildcard functions/*))
STATICCHECK := $(CACHE)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
# Lambda build: static, arm64, no RPC shim (provided.al2023 runtime).
LAMBDA_ENV   := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_FLAGS := -tags lambda.norpc,nodynamic -trimpath -ldflags='-s -w'
# gen2brain's codecs (HEIC, AVIF, WebP) would load a system library when there is one; Lambda has
# none. pkg/media turns that off in the code, so any build (go build, go test, go run) uses their
# WebAssembly builds as Lambda does; the tag also keeps them from trying to load one at all.
export GOFLAGS := $(strip $(GOFLAGS) -tags=nodynamic)

.PHONY: help build test test-unit test-race chaos scale records-scale lint local-up local-down local-status local-tool
# Packages whose tests need no local stack: `make test` also runs them under the race detector.
UNIT_PKGS := ./pkg/state ./pkg/announce ./pkg/cdn ./pkg/batchjob ./pkg/trigger ./pkg/recipe ./pkg/media ./pkg/render ./pkg/jpegscale ./pkg/jpegenc ./pkg/faultinject ./pkg/workgroup
CHAOS_OBJECTS ?= 2000
SCALE_SIZES ?= 20000,200000
RECORDS_MB ?= 1100

help:
	@echo "make demo        run the main job on the local stack"
	@echo "make test        unit + integration tests (starts and stops the local stack)"
	@echo "make build       one bootstrap per function in functions/ (linux/arm64)"
	@echo "make invoke EVENT=testdata/events/s3-put.json   the built bootstrap under AWS's Runtime Interface Emulator (Docker-free sam local invoke)"
	@echo "make bench       image-path benchmark on a real 17.9 MP photo"
	@echo "make chaos       $(CHAOS_OBJECTS) objects: faults, killed workers, reconcile/backfill/redrive racing; invariants checked"
	@echo "make scale       operator commands over $(SCALE_SIZES) synthetic objects: time, heap, requests; heap must not grow"
	@echo "make records-scale  a $(RECORDS_MB) MiB CSV through short deadlines: resumed output = one run's, peak RSS < 200 MB"
	@echo "make lint        go vet + staticcheck"
	@echo "make local-up    start MinIO + DynamoDB Local (env file: $(CACHE)/local.env)"
	@echo "make local-down  stop them"

# The operator CLI (infra/sluice) runs the local stack too; it is rebuilt every time (the Go
# build cache makes that instant).
local-tool:
	@go build -o $(SLUICE) ./infra/sluice

local-up: local-tool
	@$(SLUICE) local up

local-down: local-tool
	@$(SLUICE) local down

local-status: local-tool
	@$(SLUICE) local status

build: $(addprefix $(BUILD_DIR)/,$(addsuffix /bootstrap,$(FUNCTIONS)))

$(BUILD_DIR)/%/bootstrap: FORCE
	$(LAMBDA_ENV) go build $(LAMBDA_FLAGS) -o $@ ./functions/$*

# SAM (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-%Function:
	$(LAMBDA_ENV) go build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/$(shell echo '$*' | tr 'A-Z' 'a-z')

test-unit:
	go test -count=1 ./...

# Integration tests need the stack: `exec` starts what is not running, runs the tests with the
# stack's env, reports a server that died during the run, and stops what it started.
test: local-tool test-race
	go vet ./...
	$(SLUICE) local exec -- env SLUICE_REQUIRE_STACK=1 go test -count=1 ./...

test-race:
	go test -race -count=1 $(UNIT_PKGS)

# The chaos soak at size (make test runs a 200-object one): CHAOS_OBJECTS=5000 make chaos for more.
chaos: local-tool
	$(SLUICE) local exec -- env SLUICE_REQUIRE_STACK=1 SLUICE_CHAOS_OBJECTS=$(CHAOS_OBJECTS) go test -count=1 -timeout 60m -run '^TestChaos$$' -v ./pkg/processor | grep -v -e '^SDK ' -e '^=== RUN'

scale: local-tool
	$(SLUICE) local exec -- env SLUICE_REQUIRE_STACK=1 SLUICE_SCALE=$(SCALE_SIZES) go test -count=1 -timeout 60m -run '^TestScale$$' -v ./pkg/ops | grep -v -e '^SDK ' -e '^=== RUN'

# A records file over 1 GB (make test runs a 24 MiB one): RECORDS_MB=4096 make records-scale for more.
records-scale: local-tool
	$(SLUICE) local exec -- env SLUICE_REQUIRE_STACK=1 SLUICE_RECORDS_MB=$(RECORDS_MB) go test -count=1 -timeout 90m -run '^TestRecordsResumeAcrossAttempts$$' -v ./pkg/processor | grep -v -e '^SDK ' -e '^=== RUN'

$(STATICCHECK):
	GOBIN=$(abspath $(CACHE)/bin) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	$(STATICCHECK) ./...

.PHONY: FORCE
FORCE:

.PHONY: demo invoke
# The main job, locally: real MinIO notifications → the processor's handler → renditions, state,
# quarantine; prints a table of outcomes. The stack stays up for a look (make local-down).
demo: local-tool
	@$(SLUICE) demo

# The Docker-free `sam local invoke`: make invoke EVENT=testdata/events/s3-put.json
EVENT ?= testdata/events/s3-put.json
invoke: local-tool
	@$(SLUICE) invoke $(EVENT)

.PHONY: bench
# The image path on a real ≥ 12 MP photo (source and licence: testdata/README.md), fetched once
# from Debian's mate-backgrounds package: ours vs the naive approach, in one run.
BENCH_PHOTO := $(CACHE)/bench/Elephants_5640x3172.jpg
$(BENCH_PHOTO):
	mkdir -p $(CACHE)/bench/deb
	cd $(CACHE)/bench/deb && { apt-get download mate-backgrounds 2>/dev/null || { apt-get update -qq && apt-get download mate-backgrounds; }; }
	dpkg-deb -x $(CACHE)/bench/deb/mate-backgrounds_*.deb $(CACHE)/bench/deb/x
	cp $(CACHE)/bench/deb/x/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg $@

# The libvips side of the comparison (infra/bench/vipsjob.c), with Debian's libvips-dev.
VIPSJOB := $(CACHE)/bin/vipsjob
$(VIPSJOB): infra/bench/vipsjob.c
	pkg-config --exists vips || { apt-get install -y -q --no-install-recommends libvips-dev pkg-config || { apt-get update -qq && apt-get install -y -q --no-install-recommends libvips-dev pkg-config; }; }
	mkdir -p $(dir $@)
	gcc -O2 -o $@ $< $$(pkg-config --cflags --libs vips)

# Six real photos from the same package (GPL-2+, see testdata/README.md): two progressive, four
# baseline, 2 to 18 MP.
BENCH_SET := abstract/Elephants_5640x3172 abstract/Elephants_3840x2160 nature/TwoWings nature/Wood nature/RainDrops nature/Storm
BENCH_PHOTOS := $(CACHE)/bench/photos
$(BENCH_PHOTOS)/.done: $(BENCH_PHOTO)
	mkdir -p $(BENCH_PHOTOS)
	for p in $(BENCH_SET); do cp $(CACHE)/bench/deb/x/usr/share/backgrounds/mate/$$p.jpg $(BENCH_PHOTOS)/; done
	touch $@

# HEIC and AVIF inputs: the 8.3 MP photo re-encoded with Debian's libheif-examples (x265, aom).
BENCH_HEIF := $(CACHE)/bench/heif
$(BENCH_HEIF)/.done: $(BENCH_PHOTOS)/.done
	command -v heif-enc >/dev/null || { apt-get install -y -q --no-install-recommends libheif-examples || { apt-get update -qq && apt-get install -y -q --no-install-recommends libheif-examples; }; }
	mkdir -p $(BENCH_HEIF)
	heif-enc -q 50 -o $(BENCH_HEIF)/Elephants_3840x2160.heic $(BENCH_PHOTOS)/Elephants_3840x2160.jpg
	heif-enc -q 50 -o $(BENCH_HEIF)/Elephants_3840x2160.avif $(BENCH_PHOTOS)/Elephants_3840x2160.jpg
	touch $@

bench: $(BENCH_PHOTO) $(BENCH_PHOTOS)/.done $(BENCH_HEIF)/.done $(VIPSJOB) local-tool
	SLUICE_VIPSJOB=$(abspath $(VIPSJOB)) SLUICE_BENCH_PHOTOS=$(abspath $(BENCH_PHOTOS)) SLUICE_BENCH_PHOTO=$(abspath $(BENCH_PHOTO)) go test -count=1 -benchtime 4x -run 'TestBenchReport|TestCascadeMatchesNaiveQuality' -v ./pkg/render | grep -v '^=== RUN'
	@echo "WebP output cost (a fresh process: the first encode compiles the module):"
	SLUICE_BENCH_PHOTO=$(abspath $(BENCH_PHOTO)) go test -count=1 -run '^TestWebPCost$$' -v ./pkg/render | grep '^encode'
	@echo "colour management: the same job untagged, sRGB-tagged and Display P3-tagged:"
	SLUICE_BENCH_PHOTO=$(abspath $(BENCH_PHOTO)) go test -count=1 -benchtime 4x -run '^TestColorCost$$' -v ./pkg/render | grep '^colour'
	@echo "HEIC and AVIF inputs (WebAssembly decoders), whole jobs:"
	SLUICE_BENCH_HEIF=$(abspath $(BENCH_HEIF)) SLUICE_BENCH_PHOTOS=$(abspath $(BENCH_PHOTOS)) go test -count=1 -benchtime 3x -run '^TestHEIFCost$$' -v ./pkg/render | grep ' input '
	@echo "peak resident memory of one job, each in a fresh process:"
	SLUICE_BENCH_HEIF=$(abspath $(BENCH_HEIF)) SLUICE_BENCH_PHOTO=$(abspath $(BENCH_PHOTO)) go test -count=1 -run '^TestPeakRSS$$' -v ./pkg/render | grep 'peak RSS'
	@echo "decode only: image/jpeg at full size vs jpegscale at 1/1, 1/2, 1/4, 1/8"
	SLUICE_BENCH_PHOTO=$(abspath $(BENCH_PHOTO)) go test -count=1 -benchtime 3x -run '^$$' -bench . ./pkg/jpegscale | grep '^Benchmark'
	@echo "cold start: process start to the first poll of the Lambda runtime API, vs the smallest aws-lambda-go function"
	go test -count=1 -run '^$$' -bench ColdStart -benchtime 20x ./functions/processor | grep '^Benchmark'
	@echo "cold start as Lambda reports it: Init Duration under the Runtime Interface Emulator, fresh starts"
	$(SLUICE) local exec -- env SLUICE_REQUIRE_STACK=1 SLUICE_BENCH_COLDSTART=1 go test -count=1 -v -run '^TestColdStartUnderTheEmulator$$' ./pkg/localrun | grep '^cold start'
	@echo "requests per processed file (on the local stack):"
	$(SLUICE) local exec -- go test -count=1 -run '^TestRequestsPerFile$$' -v ./pkg/processor | grep 'faults_integration_test' | sed 's/^ *faults_integration_test.go:[0-9]*: /  /'

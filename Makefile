# iamflow developer commands. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 60000x
BENCHSHORT ?=

.PHONY: run test lint fuzz bench proto proto-check e2e e2e-cluster screenshots

## run: start every service locally with an embedded JetStream (no configuration needed)
run:
	$(GO) run ./cmd/iamflow dev

## test: unit, integration and end-to-end tests, with the race detector
test:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/e2e$$')
	$(MAKE) e2e

## e2e: the proof (issue 8): every service its own process, a real nats-server, changes under SIGKILLs;
## then NATS away for longer than OCI retries, and every service repairing what it never heard of
e2e:
	$(GO) test -count=1 -run 'TestProof|TestLongOutage' -v ./e2e/

## e2e-cluster: the proof at production shape (issue 21): a 3-server JetStream cluster, two processes of
## every service, NATS servers killed, restarted and cut off (about 3 minutes; run by .ci/run, docs/proof.md)
e2e-cluster:
	$(GO) test -count=1 -timeout 20m -run 'TestCompareDecisions|TestClusterProof' -v ./e2e/

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@GO="$(GO)" FUZZTIME="$(FUZZTIME)" bash scripts/fuzz.sh

## bench: every benchmark beside its baseline, as tables (BENCHSHORT=-short for a quick, smaller run)
bench:
	@{ $(GO) test -run '^$$' -bench Webhook -benchtime $(BENCHTIME) -benchmem ./services/ingest/ && \
	   $(GO) test -run '^$$' -bench Publish -benchtime $(BENCHTIME) -benchmem ./internal/bus/ && \
	   $(GO) test $(BENCHSHORT) -run '^$$' -bench 'EventToTarget|MembershipBurst|CatchUp|FullReconcile|InitialSyncAtLimits' -benchtime 1x -timeout 90m ./services/replicator/ && \
	   $(GO) test $(BENCHSHORT) -run '^$$' -bench ExpireTenThousand -benchtime 1x -timeout 30m ./services/expiry/ && \
	   $(GO) test -run '^$$' -bench Push -benchtime 5000x -benchmem ./internal/scimserver/ && \
	   $(GO) test $(BENCHSHORT) -run '^$$' -bench Burst -benchtime 1x -timeout 30m ./internal/scimserver/; } \
	 | tee bench.out | $(GO) run ./scripts/benchtable
	@$(GO) run ./scripts/benchplot -o docs/scaling.svg < bench.out

## proto: regenerate gen/ from proto/ with the tools pinned in tools/go.mod
proto:
	$(GO) tool -modfile=tools/go.mod buf lint
	$(GO) tool -modfile=tools/go.mod buf generate

## proto-check: fail if gen/ is not what proto/ generates
proto-check: proto
	@git diff --exit-code --stat -- gen/ || { echo "gen/ is stale: run make proto and commit"; exit 1; }

## screenshots: the console's pages at desktop and phone width, taken by the browser test (needs chromium), into docs/console/
screenshots:
	IAMFLOW_REQUIRE_CHROMIUM=1 IAMFLOW_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run TestConsoleInBrowser ./internal/console/

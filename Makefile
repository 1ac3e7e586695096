# Tessera — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROTO_OUT := gen/python
PROTOS := $(shell find protos -name '*.proto' | sort)
# Both databases by default; `make test DATABASES=sqlite` for a quick run without PostgreSQL.
DATABASES ?= sqlite,postgres

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/tessera-auth: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install
install: $(BIN)/tessera-auth ## Create .venv (if missing) and install Tessera with its dev tools

.PHONY: run
run: install ## Start both services on the embedded default (SQLite and a dev key under ./var/); Ctrl-C stops both
	@mkdir -p var
	@$(BIN)/python scripts/run-services

.PHONY: demo-data
demo-data: install ## Load a small demo catalogue and a few orders into the embedded default (./var/); idempotent
	@mkdir -p var
	$(BIN)/tessera-data seed-demo

# The TypeScript client's end-to-end test needs its npm packages; without npm it is skipped (and says so).
TS_DEPS := $(if $(shell command -v npm),clients/ts/node_modules)

.PHONY: test
test: install $(TS_DEPS) ## Run the whole test suite on SQLite and PostgreSQL (starts PostgreSQL when it is down)
	@scripts/ensure-postgres
	TESSERA_TEST_DATABASES=$(DATABASES) $(BIN)/pytest $(PYTEST_ARGS)

.PHONY: demo
demo: install ## Run the README walkthrough against real servers (both services, SQLite) and check every answer
	TESSERA_TEST_DATABASES=sqlite $(BIN)/pytest -q -p no:randomly tests/e2e/test_walkthrough.py

.PHONY: soak-reliability
soak-reliability: install ## Long reliability runs: 20x the loads, 500 generated requests per RPC, both databases
	@scripts/ensure-postgres
	TESSERA_TEST_DATABASES=$(DATABASES) TESSERA_RELIABILITY_SCALE=20 TESSERA_FUZZ_EXAMPLES=500 \
		$(BIN)/pytest tests/reliability $(PYTEST_ARGS)

.PHONY: ha
ha: ## Start a local HA PostgreSQL (Patroni + etcd, 3 members, synchronous); prints the URLs. `make ha-stop` stops it
	@scripts/ensure-ha-tools >/dev/null
	@scripts/ha-cluster start
	@scripts/ha-cluster status

.PHONY: ha-stop
ha-stop: ## Stop the cluster `make ha` started and remove its directory
	@scripts/ha-cluster stop

# The HA cases start their own Patroni clusters: 75-100 s on 2 cores (budget: 4 min, enforced by timeout).
.PHONY: ha-test
ha-test: install ## Kill and switch over the primary of a Patroni cluster under load (tests/ha; budget 4 min)
	@scripts/ensure-ha-tools >/dev/null
	TESSERA_HA_TESTS=1 TESSERA_TEST_DATABASES=postgres timeout 240 $(BIN)/pytest -s tests/ha $(PYTEST_ARGS)

.PHONY: lint
lint: install ## ruff, mypy, import-linter (layer contracts) and buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/buf lint

.PHONY: fmt
fmt: install ## Format and auto-fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clients/ts/node_modules: clients/ts/package.json clients/ts/package-lock.json
	cd clients/ts && npm ci --no-audit --no-fund
	touch $@

.PHONY: proto
proto: install clients/ts/node_modules ## Regenerate Python (messages, stubs, .pyi) and the TypeScript client
	rm -rf $(PROTO_OUT)/tessera clients/ts/gen
	mkdir -p $(PROTO_OUT)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		--grpc_python_out=$(PROTO_OUT) $(PROTOS)
	$(BIN)/buf generate

.PHONY: proto-check
proto-check: install clients/ts/node_modules ## Fail when the committed generated code (Python or TypeScript) is stale
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; mkdir -p $$tmp/py; \
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$$tmp/py --pyi_out=$$tmp/py \
		--grpc_python_out=$$tmp/py $(PROTOS) && \
	$(BIN)/buf generate -o $$tmp && \
	diff -r $$tmp/py/tessera $(PROTO_OUT)/tessera && diff -r $$tmp/clients/ts/gen clients/ts/gen && \
	echo "generated code is up to date" || \
	{ echo "generated code is stale: run 'make proto' and commit the result"; exit 1; }

.PHONY: bench
bench: install ## Benchmark on PostgreSQL against bare gRPC baselines: table + bench/results/*.json (BENCH_QUICK=1: smoke run)
	@bench/ensure-h2load
	@TESSERA_TEST_DATABASES=postgres scripts/ensure-postgres
	$(BIN)/python -m bench run $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

.PHONY: soak
soak: install ## 5-minute bounded load; fails unless each service's memory stays flat (±10 %)
	@bench/ensure-h2load
	@TESSERA_TEST_DATABASES=postgres scripts/ensure-postgres
	$(BIN)/python -m bench soak $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

.PHONY: up
up: install ## Start PostgreSQL and both services over mTLS with docker compose (dev secrets in deploy/secrets/)
	$(BIN)/python scripts/dev-secrets >/dev/null
	docker compose up --build

# The containers run as the owner of deploy/secrets/ (whose token keys are 0600).
up: export TESSERA_UID := $(shell id -u)
up: export TESSERA_GID := $(shell id -g)

.PHONY: clean
clean: ## Remove ./var (local databases and the dev signing key) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

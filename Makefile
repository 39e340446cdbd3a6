# Alchemist: every target does its own set-up, so `make demo` and `make test` work on a fresh
# machine and are idempotent (the venv is rebuilt only when pyproject.toml changes).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pinned versions per Python version, Airflow's convention; `make constraints` refreshes them.
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS := constraints/constraints-$(PY_VERSION).txt
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled

.PHONY: lint install constraints demo test bench bench-personalization toy toy-ablation browser airflow up down clean

install: $(STAMP)

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]' $(if $(wildcard $(CONSTRAINTS)),-c $(CONSTRAINTS))
	touch $(STAMP)

# Regenerate the constraints from the venv the tests passed in (everything but our package).
# Run after changing dependencies and a green `make test`; commit the file.
constraints: install
	mkdir -p constraints
	{ echo "# pip freeze of the venv \`make test\` passed in (Python $(PY_VERSION)); refresh: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable | grep -viE '^(alchemist|-e )'; } > $(CONSTRAINTS)

# Headless Chromium and its WebDriver for the browser tests (Debian packages; skipped when not root).
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
		>/dev/null) || echo "chromium not installed: the browser tests will be skipped"; }

demo: install
	$(BIN)/alchemist demo --airflow --out demo_out

# Layering contracts (pyproject [tool.importlinter]) and logic written twice (pylint, 4 lines).
lint: install
	$(BIN)/lint-imports
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=4 \
		curation model operators warehouse_schemas training evaluation

test: install browser
	$(BIN)/pytest -q

# The Airflow web UI on the demo's embedded home (http://localhost:8080; Ctrl-C stops it).
# The admin password is generated into .airflow/simple_auth_manager_passwords.json.generated.
airflow: install
	AIRFLOW_HOME=$(CURDIR)/.airflow AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags $(BIN)/airflow standalone

# The local service: Airflow 3 (api-server, scheduler, dag-processor, triggerer) and a Ray head,
# state in .service/ (override with ALCHEMIST_SERVICE_DIR). The admin password is printed once.
up: install
	$(BIN)/python -m curation.service up

# Stops every process of the service and fails if any is left.
down:
	$(BIN)/python -m curation.service down

bench: install
	$(BIN)/python -m benchmark.run --out bench_results.md
	$(MAKE) toy

# Toy personalization checks through our trainer (training/toy.py): sprite colour, then binding.
toy: install
	$(BIN)/python -m training.toy --out toy_out

toy-ablation: install
	$(BIN)/python -m training.toy --out toy_out --ablation

# build -> generate -> eval on a small MSR-VTT-like set with tiny random models: a chain test
# (meaningless scores); see README "MSRVTT-Personalization".
bench-personalization: install
	$(BIN)/python -m evaluation.msrvtt.plumbing --out bench_personalization_out

# Mutation testing, outside CI (CPU-heavy): the mutants of curation/warehouse.py, route.py,
# runner.py, keys.py, inspect.py and every stage's `decide` (config: [tool.mutmut] in
# pyproject.toml); prints the kill rate and lists the surviving mutants.
MUTANTS := "curation.warehouse.*" "curation.route.*" "curation.runner.*" "curation.keys.*" \
	"curation.inspect.*" "curation.stages.*decide__mutmut*"
mutation: install
	rm -rf mutants
	nice $(BIN)/mutmut run --max-children 2 $(MUTANTS) || true
	$(BIN)/python -m benchmark.mutation_report

clean:
	rm -rf demo_out .airflow bench_results.md .pytest_cache bench_personalization_out test-artifacts mutants toy_out

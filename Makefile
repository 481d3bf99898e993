# basketry: the two commands of the quickstart are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest workers (pytest-xdist); a test file's tests stay together on one worker (--dist
# loadfile), so that its module fixtures (a trained model, DVC's virtualenv, a Spark session)
# are made once
PYTEST_WORKERS ?= 2

.PHONY: demo test browser audit bench clean

# One install stamp per set of extras; redone when pyproject.toml changes, or setup.py, the
# kernel loader or a module beside the kernels (the install compiles the kernels ahead of time,
# see setup.py).
KERNEL_SOURCES := $(filter-out %/__init__.py,\
                  $(wildcard src/basketry/data/_*.py src/basketry/mining/_*.py \
                             src/basketry/model/_*.py)) $(wildcard src/basketry/_kernels/*.py)
$(VENV)/.installed-%: pyproject.toml setup.py $(KERNEL_SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[$*]"
	touch $@

## demo: set up (training, serving and MLflow extras), train on the bundled sample with an offline
## evaluation, track the run and register the model in the local MLflow store
## ($$BASKETRY_HOME, default ~/.basketry), apply the promotion gate, show rules and
## recommendations, then serve the champion, models:/basketry@champion, on
## http://$(HOST):$(PORT) (Ctrl-C stops it). Run it again: a new version, gated against the
## champion. When no version has passed the gate yet, the demo says why and serves the
## challenger instead: $(DEMO_REF) holds the reference served.
DEMO_REF := models/demo.ref
demo: $(VENV)/.installed-train,serve,mlflow
	$(BIN)/basketry demo --out models/demo --serve-ref $(DEMO_REF) --host $(HOST) --port $(PORT)
	$(BIN)/basketry serve --model "$$(cat $(DEMO_REF))" --host $(HOST) --port $(PORT)

## browser: Debian's chromium + chromedriver for the real-browser tests (installed when root)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "note: chromium + chromedriver missing; the browser tests will skip" \
	  "(sudo apt-get install chromium chromium-driver)"; fi

## test: set up with test extras, then ruff, the import contracts, the dependency audit (reported,
## never failing the run: `make audit` fails on a finding) and the whole pytest suite
## (with the kernels compiled ahead of time, on PYTEST_WORKERS workers), then the data, mining
## and model tests again with numba's JIT kernels (the fallback when the ahead-of-time ones are
## missing or stale; on one worker: each worker would compile every kernel again; without the
## Spark engine's tests, whose mining runs in Spark's JVM)
test: $(VENV)/.installed-test browser
	$(BIN)/ruff check src tests bench scripts setup.py
	$(BIN)/lint-imports
	-$(BIN)/python scripts/audit_dependencies.py
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25
	BASKETRY_KERNELS=jit $(BIN)/python -m pytest -q tests/data tests/mining tests/model \
	  --ignore tests/mining/test_spark_engine.py

## audit: the installed dependencies against PyPI's advisories (fails on a known vulnerability;
## `make test` runs it too and reports without failing, see docs/operations.md)
audit: $(VENV)/.installed-test
	$(BIN)/python scripts/audit_dependencies.py

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/mining.py
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/stack.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache models

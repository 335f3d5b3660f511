# The two commands of the README's quick start. Each creates .venv and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@bash scripts/bootstrap.sh $(VENV)

demo: $(STAMP)  ## the whole job, offline, on the embedded Open Images mirror
	$(VENV)/bin/mlkit demo

test: $(STAMP)  ## the test suite (uses ../shared/data when present, skips those tests otherwise)
	$(PY) -m pytest -q

bench: $(STAMP)  ## benchmarks; figures go to bench/RESULTS.md by hand
	$(PY) bench/bench_selection.py
	$(PY) bench/bench_download.py

clean:
	rm -rf mlkit-demo .pytest_cache

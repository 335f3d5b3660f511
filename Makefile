# The two commands of the README's quick start. Each creates .venv and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The team's machines keep real ImageNet weights in ../shared/data/keras: use them when present
# (a user's own ~/.keras/models works the same way); without them the demo trains from random weights.
SHARED_KERAS := $(wildcard ../shared/data/keras/models)
ifneq ($(SHARED_KERAS),)
ifeq ($(KERAS_HOME),)
export KERAS_HOME := $(abspath ../shared/data/keras)
endif
endif

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
	$(PY) bench/bench_train.py
	$(PY) bench/bench_export.py

clean:
	rm -rf mlkit-demo .pytest_cache

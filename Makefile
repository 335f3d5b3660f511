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

# The Swift package of the iOS sample, built and tested after the Python tests where a Swift
# toolchain is found: on PATH, else in /opt/swift (where the project's Linux machines have it;
# a non-interactive shell's PATH may lack it). Strict concurrency checking, warnings as errors.
SWIFT ?= $(shell command -v swift 2>/dev/null || { test -x /opt/swift/usr/bin/swift && echo /opt/swift/usr/bin/swift; })
SWIFT_FLAGS := -Xswiftc -strict-concurrency=complete -Xswiftc -warnings-as-errors
HOTDOGKIT := ios_demo/HotDogKit

.PHONY: demo test swift-test bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@bash scripts/bootstrap.sh $(VENV)

demo: $(STAMP)  ## the whole job, offline, on the embedded Open Images mirror
	$(VENV)/bin/mlkit demo

test: $(STAMP)  ## the test suite (uses ../shared/data when present, skips those tests otherwise)
	$(PY) -m pytest -q
	@$(MAKE) --no-print-directory swift-test

swift-test:  ## swift build + swift test of ios_demo/HotDogKit (skipped, in one line, without a toolchain)
ifeq ($(SWIFT),)
	@echo "swift: not found on PATH, skipping the build and tests of $(HOTDOGKIT) (a Mac runs them in Xcode: see ios_demo/README.md)"
else
	cd $(HOTDOGKIT) && $(SWIFT) build $(SWIFT_FLAGS)
	cd $(HOTDOGKIT) && $(SWIFT) test $(SWIFT_FLAGS)
endif

bench: $(STAMP)  ## benchmarks; figures go to bench/RESULTS.md by hand
	$(PY) bench/bench_selection.py
	$(PY) bench/bench_download.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_export.py

clean:
	rm -rf mlkit-demo .pytest_cache

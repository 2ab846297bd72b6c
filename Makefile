# Thin wrapper over CMake. `make demo` and `make test` work on a fresh Debian 12 machine as root:
# they install what is missing first (`make deps`, apt). `make build` never calls apt.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
PY := /usr/bin/python3
# The system tests, the benches and the demo import the harness package python/sluice_harness.
PYENV := PYTHONPATH=$(CURDIR)/python$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: all deps build build-asan install test unit-test system-test asan-test demo bench fuzz format clean

all: build

deps:
	@scripts/install-deps

build:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The proxy, `sluice`, the systemd unit (lib/systemd/system) and an example configuration
# (share/doc/sluice) under PREFIX (default /usr/local); DESTDIR is honoured.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

build-asan:
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

unit-test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

system-test: build
	SLUICE_BUILD=$(abspath $(BUILD)) $(PYENV) $(PY) -m pytest -q --durations=20 tests/system

# The unit tests and the proxy's data-path system tests against the AddressSanitizer + UBSan
# build (the control plane's, the function host's, the configuration checks' and `make install`'s
# system tests run once, above).
ASAN_SYSTEM_SKIP := --ignore-glob='tests/system/test_cloud_*' --ignore=tests/system/test_cli.py \
  --ignore=tests/system/test_functions.py --ignore-glob='tests/system/test_meal_planner*' \
  --ignore=tests/system/test_config.py --ignore=tests/system/test_install.py
asan-test: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)
	SLUICE_BUILD=$(abspath $(ASAN_BUILD)) SLUICE_SANITIZED=1 $(PYENV) $(PY) -m pytest -q --durations=20 $(ASAN_SYSTEM_SKIP) tests/system

test: deps
	@$(MAKE) --no-print-directory unit-test system-test asan-test

demo: deps
	@$(MAKE) --no-print-directory build
	@$(PYENV) $(PY) scripts/demo.py --build $(abspath $(BUILD))

bench: deps
	@$(MAKE) --no-print-directory build
	@$(PYENV) $(PY) bench/bench.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/instructions.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/functions.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/storm.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/contention.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/restart.py --build $(abspath $(BUILD))
	@$(PYENV) $(PY) bench/failover.py --build $(abspath $(BUILD))

# libFuzzer (clang): each target in fuzz/ for FUZZ_SECONDS from its seed corpus in fuzz/corpus.
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

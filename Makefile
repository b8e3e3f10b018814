# ember: two commands do all set-up on a fresh machine.
#   make demo   installs, compiles the example MLP block, checks it against PyTorch, prints latency
#   make test   installs (test extras too) and runs pytest + lit, showing progress as they go;
#               the last line is "N passed, N failed, N skipped"
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
#: libomp-dev: OpenMP threads on the host; qemu-user + the AArch64 cross toolchain: the aarch64
#: target's tests; lld: linking AMDGPU code objects (rocm target). Tests needing a missing one skip.
APT_PACKAGES := libomp-dev qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross lld

.PHONY: install install-test system-deps demo test bench lit pytest docs

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	      || echo "warning: could not install:$$missing (tests that need them will skip)"; \
	  else echo "warning: please install:$$missing"; fi; \
	fi

install: system-deps
	$(PIP) install -q -e .

install-test: system-deps
	$(PIP) install -q -e ".[test]"

demo: install
	$(PYTHON) examples/mlp_block.py

test: install-test
	$(PYTHON) tests/run_all.py

pytest:
	$(PYTHON) -m pytest -q tests

lit:
	lit -q lit_tests

bench: install
	$(PIP) install -q -e ".[bench]"
	$(PYTHON) benchmarks/run_all.py

docs:
	$(PYTHON) -m ember.dialect.docgen > python/ember/dialect/README.md

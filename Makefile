# Two commands do all the set-up on a fresh machine:
#   make up    - install, start the hub with the demo consortium
#   make test  - install, run the test suite
# (make bench runs the benchmarks and writes bench/RESULTS.md)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: up test bench install browser lb clean

install: $(STAMP)

# torch==2.13.0 (the local CPU build) is pinned in requirements.txt and installed by pip in the
# same command as everything else, so no CUDA build is ever pulled in.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -e .
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the UI tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# Debian's haproxy for the replica test (tests/replicas: two hubs behind a real load balancer).
lb:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { \
	  echo "installing Debian's haproxy for the replica tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) \
	  || echo "warning: could not install haproxy; the replica tests will be skipped"; }

up: $(STAMP)
	$(VENV)/bin/consortium up

test: $(STAMP) browser lb
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache

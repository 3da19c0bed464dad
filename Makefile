# Runward: the two commands of the README, and what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
APT_PACKAGES := clang llvm libbpf-dev bpftool docker-compose runc busybox-static nftables iproute2 libseccomp2

.PHONY: run test deps system-deps lint clean

## make run: install what is missing, start everything, replay the bundled scenario, show the attack story
run: deps
	$(VENV)/bin/runward demo

## make test: install what is missing, then run the whole suite (real broker, PostgreSQL, SQLite, eBPF)
test: deps
	$(PY) -m pytest -q -ra

deps: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run 'sudo apt-get install$$missing'; the eBPF tests skip without them)"; fi; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .runward sensor/build

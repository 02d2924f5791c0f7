# Every target creates .venv on a fresh clone and installs what it needs from PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv demo demo-extended test bench lint clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) -e ".[text,dev,ray]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/repscope demo

demo-extended: venv
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/repscope demo --extended

# the browser tests need headless Chromium: installed through apt when missing and this user can (root or passwordless
# sudo), else a warning says what to do (REPSCOPE_NO_APT=1 skips the install)
test: venv
	@bash .ci/ensure-chromium
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra

bench: venv
	$(PIP) -e ".[text,dev,bench]"
	# lightly (benchmarks/learn.py) requires torchvision, which does not import beside the CPU torch wheel; the
	# benchmark loads only lightly's loss module, so install it without its dependencies
	$(PIP) --no-deps lightly==1.6.0
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) benchmarks/run_all.py

# ruff, then the import contracts of pyproject.toml [tool.importlinter] (layers, independent plugins, no cycles)
lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) demo_out repscope.duckdb report.html .pytest_cache

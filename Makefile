# The two front-door commands: `make demo` and `make test`. Both create/reuse .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch==2.13.0 is the CPU build that installs from local disk on the project's machines;
# real users get any torch the pyproject range admits (set TORCH_SPEC= to skip the pin).
TORCH_SPEC ?= torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test ui ui-stop lint typecheck clean clean-studies

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q -e '.[dev,postgres,k8s,dashboard]'   # dashboard: optuna-dashboard (hpo-assets dashboard)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hpo-assets init-instance
	$(BIN)/hpo-assets demo $(DEMO_ARGS)

test: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# `make ui` records its pid in $(UI_PID); `make ui-stop` stops it (also when `make ui &` ran from a script,
# where a plain kill is ignored: see hpo_assets/ui_process.py).
UI_PID ?= $(DAGSTER_HOME)/ui.pid

ui: $(STAMP)
	$(BIN)/hpo-assets init-instance
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m hpo_assets.ui_process start $(UI_PID) -- $(BIN)/dg dev $(UI_ARGS)   # [tool.dg] in pyproject.toml; UI_ARGS="--port 3001"

ui-stop:
	$(BIN)/python -m hpo_assets.ui_process stop $(UI_PID)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

# Generated files only. Studies in .hpo/ may hold GPU-days of trials: `make clean-studies` deletes them.
clean:
	rm -rf .dagster_home outputs

clean-studies:
	@echo "deleting every Optuna study in .hpo/ (Ctrl-C within 5 s to keep them)"; sleep 5
	rm -rf .hpo

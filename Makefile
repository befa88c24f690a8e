# Pixelmerge — `make run` and `make test` are the quick start; both call `make setup`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
OUT     ?= out/demo

.PHONY: setup system run test lint bench clean

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

# make run: a Redis of its own, the web app, a worker and the scheduler (Procfile.local, honcho)
RUN_REDIS_PORT ?= 6389
run: setup
	$(VENV)/bin/pixelmerge demo --out $(OUT)
	$(VENV)/bin/pixelmerge bootstrap
	@echo "Serving Pixelmerge on http://localhost:8000 (API docs: http://localhost:8000/docs)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PIXELMERGE_REDIS_PORT=$(RUN_REDIS_PORT) \
	  REDIS_URL=redis://127.0.0.1:$(RUN_REDIS_PORT)/0 \
	  $(VENV)/bin/honcho -f Procfile.local start

test: setup
	$(VENV)/bin/ruff check renderer connectors webapp tests bench
	$(PY) -m pytest -n 2 -q

lint: setup
	$(VENV)/bin/ruff check renderer connectors webapp tests bench

bench: setup
	$(PY) bench/render_card.py

clean:
	rm -rf $(VENV) out .pytest_cache

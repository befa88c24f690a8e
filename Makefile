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
	@[ -n "$$GOOGLE_SERVICE_ACCOUNT_FILE" ] || echo "No Google credentials set: the Sheets emulator (NOT Google) on http://127.0.0.1:8090 stands in"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PIXELMERGE_REDIS_PORT=$(RUN_REDIS_PORT) \
	  REDIS_URL=redis://127.0.0.1:$(RUN_REDIS_PORT)/0 \
	  GOOGLE_SHEETS_API_URL=$${GOOGLE_SHEETS_API_URL:-$$([ -n "$$GOOGLE_SERVICE_ACCOUNT_FILE" ] \
	    && echo https://sheets.googleapis.com || echo http://127.0.0.1:8090)} \
	  GOOGLE_SERVICE_ACCOUNT_FILE=$${GOOGLE_SERVICE_ACCOUNT_FILE:-$(CURDIR)/var/sheets-emulator-service-account.json} \
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

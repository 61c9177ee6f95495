# Two commands matter: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= $(or $(LIAISON_PORT),8000)

.PHONY: run test lint install clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# bpmn-js for the designer's diagram: from the npm registry, served by our app (no CDN).
BPMN_JS := forms/static/vendor/bpmn-js/VERSION

$(BPMN_JS): tools/fetch_bpmn_js.sh
	tools/fetch_bpmn_js.sh

# Chart.js for the SLA page's charts: from the npm registry too, served by our app.
CHART_JS := forms/static/vendor/chart.js/VERSION

$(CHART_JS): tools/fetch_chart_js.sh
	tools/fetch_chart_js.sh

# Browser tests drive Debian's Chromium; never a downloaded browser.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests are skipped (sudo apt-get install chromium)"; fi; \
	fi

install: $(STAMP) $(BPMN_JS) $(CHART_JS)

run: $(STAMP) $(BPMN_JS) $(CHART_JS)
	$(BIN)/liaison init-db
	$(BIN)/liaison demo
	LIAISON_DEMO_PROVIDER=1 $(BIN)/liaison serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(BPMN_JS) $(CHART_JS) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache

# Switchyard: `make run` serves the panel, the worker and HAProxy; `make test` runs the suite.
# Both install what is missing first (Debian packages, .venv) and start dockerd if needed.
PYTHON := .venv/bin/python

.PHONY: run test bench install

install:
	scripts/install.sh

run: install
	scripts/services.sh
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py ensure_admin
	$(PYTHON) manage.py collectstatic --noinput -v0
	.venv/bin/honcho -f Procfile start

# Tests start their own Redis, Celery worker and HAProxy on free ports; only dockerd is shared.
test:
	WITH_BROWSER=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	.venv/bin/pytest

# Benchmarks (not part of `make test`); each writes its section of bench/RESULTS.md.
bench:
	WITH_BENCH=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	.venv/bin/python bench/webhook_latency.py
	.venv/bin/python bench/deploys.py

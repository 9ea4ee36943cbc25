# Switchyard: `make run` serves the panel, the worker and HAProxy; `make test` runs the suite.
# Both install what is missing first (Debian packages, .venv) and start dockerd if needed.
PYTHON := .venv/bin/python
# Python caches compiled modules (and pytest its rewritten test modules) in __pycache__; an
# environment that turns that off makes every process compile the project again: about 0.2 s of
# CPU per worker, command and test process, and a fifth of the quick test loop's time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test stack-test multihost-test agent bench install

install:
	scripts/install.sh

# Every installation on this machine's dockerd holds one build lock (dockerd/build_lock.py): the
# test runs and the benchmark name the same file (tests/support/settings.py).
run: export SWITCHYARD_BUILD_LOCK_FILE ?= /run/lock/switchyard-build.lock
run: install
	scripts/services.sh
	$(PYTHON) manage.py egress --apply  # app containers and builds kept off the host (docs/security-model.md, "Egress")
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py ensure_admin
	$(PYTHON) manage.py collectstatic --noinput -v0
	$(PYTHON) manage.py supervise

# Tests start their own Redis, Celery worker and HAProxy on free ports; only dockerd is shared. So
# three pytest-xdist workers run side by side (most of a stack test is waiting on a container or a
# check; an idle one takes queued tests from a busy one: worksteal); the `serial` tests, which
# restart dockerd, run afterwards on their own.
TEST_PROCESSES ?= 3
test:
	WITH_BROWSER=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	.venv/bin/pytest -n $(TEST_PROCESSES) --dist worksteal -m "not serial and not multihost" --durations=30  # the slowest, to keep it under 12 min
	.venv/bin/pytest -m serial

# The production stack (compose/) built from a local Debian base, started, used and torn down.
stack-test:
	WITH_STACK=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	scripts/base-image.sh
	.venv/bin/pytest tests/stack/compose_stack_test.py

# The fleet (deployments/fleet/) on a rig of hosts simulated on this machine: network namespaces on a
# private bridge, a dockerd each, the registry (tests/multihost/rig.py). One process: the rig's
# names (namespaces, links) are the machine's, so two runs at once would share them.
multihost-test:
	WITH_MULTIHOST=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	SWITCHYARD_TEST_BROKER_PASSWORD=1 .venv/bin/pytest -m multihost tests/multihost

# This machine as a host of a fleet: `manage.py hosts add` on the panel printed the command, which
# sets SWITCHYARD_AGENT_BROKER and SWITCHYARD_PANEL_FINGERPRINT; HOST is the host's name.
agent: install
	NO_REDIS=1 scripts/services.sh
	$(PYTHON) manage.py agent --host $(HOST)

# Benchmarks (not part of `make test`); each writes its section of bench/RESULTS.md.
bench:
	WITH_BENCH=1 scripts/install.sh
	NO_REDIS=1 scripts/services.sh
	scripts/base-image.sh
	.venv/bin/python bench/webhook_latency.py
	.venv/bin/python bench/deploys.py
	.venv/bin/python bench/compose_deploys.py
	.venv/bin/python bench/hard_cases.py
	.venv/bin/python bench/many_apps.py
	.venv/bin/python bench/goals.py

# Crieur: `make run` starts the village, `make test` runs the whole suite.
# Both create and fill .venv themselves.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The venv is refilled when pyproject.toml or a lock file changes (pins move by `make lock`).
LOCKS := requirements.lock requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | cksum | cut -d' ' -f1)

.PHONY: communes-data venv run test test-unit test-integration test-e2e test-future lint schemas asyncapi bench chaos clean lock audit docs settings-doc

venv: $(STAMP)

# Exactly the locked versions, each checked against its hash; then crieur itself, whose
# dependencies are all in the lock already.
$(STAMP): pyproject.toml $(LOCKS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Re-resolve pyproject.toml's ranges into the lock files, for CPython 3.11 on Linux (the
# Docker image's), with every file's hash: each pin moves to the newest release allowed.
# `make lock UPGRADE=` only adds or drops what pyproject.toml changed and keeps the rest.
# The dev lock is constrained by the runtime lock, so both name the same versions.
UPGRADE ?= --upgrade
LOCK_ARGS := --quiet --custom-compile-command 'make lock' --generate-hashes --python-version 3.11 --python-platform linux $(UPGRADE)
lock: venv
	$(VENV)/bin/uv pip compile $(LOCK_ARGS) pyproject.toml -o requirements.lock
	$(VENV)/bin/uv pip compile $(LOCK_ARGS) --extra dev -c requirements.lock pyproject.toml \
		-o requirements-dev.lock

# Known vulnerabilities in the locked versions (runtime and dev). Needs the network to
# reach the advisory database (PyPI's JSON API / OSV): run it by hand, not in CI.
audit: venv
	$(VENV)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements-dev.lock

run: venv
	$(PY) -m crieur.village

# The suite over WORKERS processes (pytest-xdist): much of its time is spent waiting on
# subprocesses, servers and the bus, so two processes on two cores nearly halve it. Each
# worker has its own nats-server, villages and ports; tests/conftest.py keeps a module's
# tests (its fixtures) and the chaos scenarios (their village) on one worker.
WORKERS ?= 2
XDIST := -n $(WORKERS)

# ruff and mypy first (`make lint`): a style or type error fails fast, before the tests.
test: venv lint
	$(PY) -m pytest $(XDIST)

test-unit: venv
	$(PY) -m pytest tests/unit

test-integration: venv
	$(PY) -m pytest $(XDIST) tests/integration

test-e2e: venv
	$(PY) -m pytest $(XDIST) tests/e2e

# The suites that handle dates, with the machine's clock a year ahead (Debian's faketime):
# proves no test depends on the day it runs. Not part of `make test`.
test-future: venv
	command -v faketime >/dev/null || { echo "apt-get install faketime" >&2; exit 1; }
	faketime -f '+365d' $(PY) -m pytest -p no:cacheprovider tests/unit tests/integration/notices \
		tests/integration/staff tests/integration/sms tests/integration/email

# ruff and mypy --strict (with the pydantic plugin), as the style asks; `make test` runs it,
# `make test-unit` does not (it stays a quick loop).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Re-export the JSON Schemas of the events into schemas/json/ (a test fails when stale),
# and the bus's AsyncAPI description, which holds the same models.
schemas: venv
	$(PY) -m schemas.export
	$(PY) -m schemas.asyncapi

# Regenerate schemas/asyncapi.json, the AsyncAPI description of the bus (a test fails when stale).
asyncapi: venv
	$(PY) -m schemas.asyncapi

# The documentation site (docs/, MkDocs Material) into var/site; --strict fails on a broken
# link or anchor (not with --quiet, which hides the warnings --strict counts). CI runs it.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d var/site

# Regenerate docs/operations/settings.md from the Settings classes (a test fails when stale).
settings-doc: venv
	$(PY) -m docs.gen_settings

# Not part of `make test`: the whole village fanning alerts out to 1,000, 10,000 and 100,000
# email and SMS subscribers, latency, peak RSS and a 500-commune alert, against raw
# baselines measured in the same run; prints a table and writes var/bench/bench.json.
bench: venv
	$(PY) -m bench

# Every fault-injection scenario (docs/testing.md) against the village's real processes (under
# 15 minutes); prints what the sinks received and writes var/chaos/chaos.json. `make test`
# runs a selection of them (tests/chaos, those not marked chaos_full).
chaos: venv
	CRIEUR_CHAOS=full $(PY) -m pytest tests/chaos -p no:cacheprovider

clean:
	rm -rf var .pytest_cache

# Regenerate crieur/data/communes.tsv.gz (communes, départements, EPCIs) from
# Etalab's official lists, the npm package @etalab/decoupage-administratif. Not part of
# `make venv`: the generated file is committed; run this when a new version is out.
DECOUPAGE_VERSION ?= 6.0.0
communes-data: venv
	rm -rf var/communes-data && mkdir -p var/communes-data
	cd var/communes-data && npm pack --silent @etalab/decoupage-administratif@$(DECOUPAGE_VERSION) \
		&& tar xzf *.tgz
	$(PY) -m crieur.geo build var/communes-data/package

# The two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv on first use and install exactly requirements.lock; later runs reuse it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint check bench bench-fleet lock clean chaos dist soak shop docs

$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) manage.py migrate --noinput -v 0
	@$(PY) manage.py demo

# The suite runs on every core (pytest-xdist, one sandbox per worker); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	@$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# mypy checks qbo_sync's client, mapping, services, tasks, receivers and webhooks (pyproject.toml [tool.mypy] files)
# and what they import.
lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy
	@$(PY) manage.py makemigrations --check --dry-run -v 0
	@$(PY) manage.py check

# The development harnesses live in benchmarks/ (not in the wheel), with Batchly as their host.
# The benchmark suite (docs/performance.md): every scenario at full size against the bundled sandbox at QBO's real
# speed (about 12 minutes), each on a fresh SQLite database; then progress-api on PostgreSQL (BENCH_PG_URL).
# Quicker, reduced runs: make bench BENCH_ARGS="--count 1000 --time-scale 5" (figures then say so).
BENCH_ARGS ?=
BENCH_PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
bench: $(STAMP)
	@$(PY) manage.py bench all $(BENCH_ARGS)
	@$(PY) manage.py bench progress-api --database-url $(BENCH_PG_URL) $(BENCH_ARGS) \
		|| echo "progress-api on PostgreSQL skipped: no server at $(BENCH_PG_URL)"

# The fleet scenarios (docs/performance.md, "Fleet"): real django-q2 clusters, QBO's real speed, full size.
FLEET_REDIS_URL ?= redis://127.0.0.1:6379/8
bench-fleet: $(STAMP)
	@$(PY) manage.py bench realtime-latency $(BENCH_ARGS)
	@$(PY) manage.py bench realtime-latency --load $(BENCH_ARGS)
	@REDIS_URL=$(FLEET_REDIS_URL) QBO_BENCH_REDIS_URL=$(FLEET_REDIS_URL) $(PY) manage.py bench fleet-throughput \
		--throttle redis --database-url $(BENCH_PG_URL) $(BENCH_ARGS)

# The chaos suite (docs/reliability.md): SQLite with one cluster, then PostgreSQL with two (CHAOS_PG_URL, default
# postgres://postgres@127.0.0.1:5432). CHAOS_COUNT / CHAOS_SCALE set the size.
CHAOS_COUNT ?= 3000
CHAOS_SCALE ?= 60
chaos: $(STAMP)
	@$(PY) manage.py chaos --db sqlite --count $(CHAOS_COUNT) --time-scale $(CHAOS_SCALE) --strict
	@$(PY) manage.py chaos --db postgres --clusters 2 --count $(CHAOS_COUNT) --time-scale $(CHAOS_SCALE) --strict

# The release artefacts: sdist and wheel in dist/ (setuptools from an isolated build env), checked by twine.
dist: $(STAMP)
	@rm -rf dist
	@$(PY) -m build --outdir dist . >/dev/null
	@$(VENV)/bin/twine check --strict dist/*

# The documentation site (mkdocs.yml): docs/ built with --strict (a broken link or a page left out of the nav fails).
docs: $(STAMP)
	@$(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# The model-based soak (docs/reliability.md): SOAK_EXAMPLES random histories of the sync (tests/model) against the
# bundled sandbox on the SQLite test database. Prints its seed first (rerun one with SOAK_SEED=...) and a JSON
# summary last: histories, steps, faults injected, invariant violations.
SOAK_EXAMPLES ?= 2000
ifndef SOAK_SEED
SOAK_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
SOAK_SUMMARY ?= soak-summary.json
soak: $(STAMP)
	@echo "soak seed: $(SOAK_SEED) ($(SOAK_EXAMPLES) histories; rerun with make soak SOAK_SEED=$(SOAK_SEED))"
	@QBO_MODEL_PROFILE=soak QBO_MODEL_EXAMPLES=$(SOAK_EXAMPLES) QBO_MODEL_SUMMARY=$(SOAK_SUMMARY) \
		$(PY) -m pytest tests/model/test_sync_model.py -q -p no:logging --hypothesis-seed=$(SOAK_SEED) --durations=0; \
		status=$$?; cat $(SOAK_SUMMARY); echo; exit $$status

# The second host (examples/shop/README.md): the wheel in a fresh virtualenv with a project that is not Batchly,
# against a sandbox started from the wheel: the lock's Django 5.2 on Python 3.11, Django 6.0 on the newest Python
# found (3.12+; pyenv's are looked for too).
SHOP_DJANGO6 ?= 6.0.10
shop: $(STAMP)
	@$(PY) examples/shop/run_from_wheel.py
	@$(PY) examples/shop/run_from_wheel.py --django $(SHOP_DJANGO6)

# Regenerate the lock after editing pyproject.toml (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra scale --extra test --extra dev --generate-hashes \
		--python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) db.sqlite3* .pytest_cache dist build site *.egg-info soak-summary.json

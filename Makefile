# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test check lint bench clean lock docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/ecswatch demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole suite, as CI runs it, spread over TEST_WORKERS processes: most tests wait on an
# emulator, a subprocess or a timeout rather than compute, so more processes than cores pay.
TEST_WORKERS ?= 4
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS)

# The inner loop (under a minute): lint and the unit tests, no emulator, no subprocess daemons.
check: lint
	$(BIN)/pytest -n 2 --ignore=tests/integration -m "not slow"

# The documentation site on http://127.0.0.1:8000, rebuilt on every save (tests/test_docs.py
# builds it strictly).
docs: $(BIN)/.installed
	$(BIN)/mkdocs serve

# The image's dependency locks, from PyPI alone (not this machine's local wheel folders). Run it
# deliberately, to take new releases, and commit both files; the package keeps its ranges.
PIP_COMPILE := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet \
	--generate-hashes --strip-extras --no-emit-find-links --no-emit-index-url
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.6'
	$(PIP_COMPILE) --upgrade -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --allow-unsafe --only-build-deps --build-deps-for wheel \
		-o requirements-build.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

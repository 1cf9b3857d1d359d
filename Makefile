# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint services bench clean bundle

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/syncd demo

services:
	bash tests/services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check syncd connectors tests bench

test: $(STAMP) services lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The offline bundle for a server without internet (README): dist/syncd-<version>-<platform>.tar.gz.
# For Debian 12 from another machine: bash bundle/build.sh --python-version 3.11 --platform manylinux2014_x86_64
bundle: $(STAMP)
	bash bundle/build.sh

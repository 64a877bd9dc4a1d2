# leukcore: the two commands of the README are `make book` and `make test`.
# Both build the virtual environment first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.leukcore-installed
# PyPI's default build pair; the machine's own torch 2.13.0+cpu wheel breaks torchvision.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
PYTEST_FAST := -m "not slow and not book"

.PHONY: venv book test test-fast test-nb test-slow test-book verify bench reproduce-smoke reproduce-cpu clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $(TORCH_PINS)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

## make book: build the Jupyter Book (renders the committed, executed runs; no execution)
book: $(STAMP)
	$(BIN)/leukcore book pages
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

## make test: the CI suite (every committed record verified, unit tests, nbval over the notebooks at the smoke
## profile, book + browser checks)
test: $(STAMP)
	$(MAKE) verify
	$(BIN)/python -m pytest $(PYTEST_FAST) tests
	$(BIN)/python -m pytest --nbval-lax notebooks/*.ipynb
	$(MAKE) book
	$(BIN)/python -m pytest -m book tests/book

## make verify: every committed record against itself, its predictions, settings, data and commit
verify: $(STAMP)
	$(BIN)/leukcore records verify

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_FAST) tests

test-nb: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax notebooks/*.ipynb

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow tests

test-book: $(STAMP)
	$(BIN)/python -m pytest -m book tests/book

bench: $(STAMP)
	$(BIN)/leukcore bench

reproduce-smoke: $(STAMP)
	$(BIN)/leukcore reproduce --paper all --profile smoke

reproduce-cpu: $(STAMP)
	$(BIN)/leukcore reproduce --paper all --profile cpu

clean:
	rm -rf _build

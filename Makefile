# The README's two commands: `make book` and `make test`.
# Both create .venv (python3 -m venv) and install bnnlib into it with the pinned, tested
# versions of constraints.txt; the stamp .venv/.installed skips that when nothing changed.

PYTHON  ?= python3
PROFILE ?= default
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: book test venv clean clean-all clean-venv help

help:
	@echo "make book [PROFILE=default|quick|numerai DATA_DIR=...]  execute the chapters, build _build/html"
	@echo "make test                                             run the tests (incl. the whole book on 'quick')"
	@echo "make venv                                             create .venv with the pinned packages"
	@echo "make clean                                            remove the HTML, executed notebooks, results (keeps _build/cache, _build/data)"
	@echo "make clean-all                                        remove all of _build, the cache of fits included"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/bnnlib book --profile $(PROFILE) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build/html _build/.doctrees _build/jupyter_execute _build/.jupyter_cache \
	       _build/executed _build/executing _build/failed _build/results _build/book-build.log \
	       book/*.ipynb

clean-all:
	rm -rf _build book/*.ipynb

clean-venv:
	rm -rf $(VENV)

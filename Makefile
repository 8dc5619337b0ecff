# judo: `make demo` runs the main job, `make test` runs the whole test suite. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export MPLBACKEND ?= Agg
# the tiny models run 2-10x faster on one thread per process; tests run two processes side by side
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test check nbtest pytest export clean-nbs bench docs site figures lab
setup: $(VENV)/.installed
$(VENV)/.installed: settings.ini setup.py
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup            ## the main job on its built-in default (recipes/tiny-look)
	$(BIN)/judo-pipeline

test: setup check nbtest pytest site   ## the whole suite: sync check, notebooks, pytest (incl. the browser test), docs site

check: setup           ## fail when notebooks are unclean or the package differs from what they export
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	git diff --exit-code -- nbs judo || (echo "notebooks are not clean or judo/ is not what nbs/ exports: run 'make export' and commit" >&2; exit 1)
	test -z "$$(git status --porcelain --untracked-files=all -- judo)" || (git status --short -- judo; echo "judo/ has files the notebooks do not export" >&2; exit 1)

nbtest: setup          ## run every notebook as nbdev_test does, keeping the executed copies in _build/executed
	$(BIN)/python tools/run_nbs.py --n_workers 2

site: setup            ## the docs site from the executed notebooks, then check pages, figures and saved figures
	$(BIN)/python tools/build_docs.py
	$(BIN)/python tools/check_docs.py
	$(BIN)/python tools/figures.py --check

docs: nbtest site      ## build the docs site offline into _build/site (open _build/site/index.html)

figures: setup         ## after `make nbtest`: save the notebooks' figures into nbs/ so GitHub shows them
	$(BIN)/python tools/figures.py

lab: setup             ## JupyterLab on the notebooks; --allow-root so it also starts as root (containers)
	$(BIN)/jupyter lab --allow-root --notebook-dir=nbs $(LAB_ARGS)

pytest: setup
	$(BIN)/python -m pytest -q -n 2 --durations=10 tests

export: setup          ## after editing notebooks
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export

bench: setup
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

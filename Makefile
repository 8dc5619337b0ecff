# judo: `make demo` runs the main job, `make test` runs the whole test suite. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export MPLBACKEND ?= Agg
# the tiny models run 2-10x faster on one thread per process; tests run two processes side by side
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test check nbtest pytest export clean-nbs bench
setup: $(VENV)/.installed
$(VENV)/.installed: settings.ini setup.py
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup            ## the main job on its built-in default
	$(BIN)/judo-pipeline

test: setup check nbtest pytest   ## the whole suite: sync check, notebooks, pytest

check: setup           ## fail when notebooks are unclean or the package differs from what they export
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	git diff --exit-code -- nbs judo || (echo "notebooks are not clean or judo/ is not what nbs/ exports: run 'make export' and commit" >&2; exit 1)
	test -z "$$(git status --porcelain --untracked-files=all -- judo)" || (git status --short -- judo; echo "judo/ has files the notebooks do not export" >&2; exit 1)

nbtest: setup
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: setup
	$(BIN)/python -m pytest -q -n 2 --durations=10 tests

export: setup          ## after editing notebooks
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export

bench: setup
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

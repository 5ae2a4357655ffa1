# Thin aliases of the `boom` CLI. Every target uses the virtual environment in .venv/ and creates it on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
BOOM := $(VENV)/bin/boom
CONSTRAINTS := requirements/constraints.txt
# The LLNL CHNO-10k CSVs: a raw-data folder when there is one (CI: ../shared), else boom downloads them.
SHARED_RAW := $(abspath ../shared/data/llnl-chno-10k)
BOOM_RAW_DIR ?= $(if $(wildcard $(SHARED_RAW)/10k_dft_density_data.csv),$(SHARED_RAW),)
export BOOM_RAW_DIR

MODEL ?= rf
PROP ?= density
SEED ?= 0
RUNNER ?= local
SET ?=
ARGS ?=

.PHONY: setup setup-models run matrix compose docker-base report prepare test test-unit mutation test-fast bench schema clean-venv help

help:
	@echo "make run MODEL=rf PROP=density [SEED=0] [RUNNER=local|docker] [SET='k=v k2=v2']   one benchmark run"
	@echo "make test                 the test suite (sets up everything it needs)"
	@echo "make test-unit            the fast layer: no model training, no Docker (a few minutes at most)"
	@echo "make mutation             mutation score of the unit tests -> bench/results/mutation.md"
	@echo "make prepare              datasets and BOOM splits"
	@echo "make report               leaderboard of all runs"
	@echo "make bench                split-preparation benchmark"

$(VENV)/.core-stamp: requirements/core.txt $(CONSTRAINTS) schema/pyproject.toml core/pyproject.toml models/_kit/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -c $(CONSTRAINTS) -r requirements/core.txt
	$(PIP) install --no-deps -e schema -e models/_kit -e core
	touch $@

$(VENV)/.models-stamp: $(VENV)/.core-stamp requirements/torch.txt requirements/no-deps.txt $(CONSTRAINTS)
	$(PIP) install -c $(CONSTRAINTS) -r requirements/torch.txt
	$(PIP) install --no-deps -r requirements/no-deps.txt
	touch $@

setup: $(VENV)/.core-stamp

setup-models: $(VENV)/.models-stamp

# a model's own requirements (models/<name>/requirements.txt), installed once per content
$(VENV)/.model-%-stamp: models/%/requirements.txt $(VENV)/.core-stamp
	if grep -qv '^\s*\(#\|$$\)' $<; then $(PIP) install -c $(CONSTRAINTS) -r $<; fi
	touch $@

prepare: setup
	$(BOOM) data prepare

run: setup $(VENV)/.model-$(MODEL)-stamp
	$(BOOM) run $(MODEL) $(PROP) --seed $(SEED) --runner $(RUNNER) $(foreach s,$(SET),--set $(s)) $(ARGS)

report: setup
	$(BOOM) report

# every (model, property, seed) the specs support; e.g. make matrix ARGS='--models rf --props density,hof'
matrix: setup
	$(BOOM) matrix --runner $(RUNNER) $(ARGS)

# regenerate compose.yaml from models/ (commit it; tests/test_compose.py fails when it is stale)
compose: setup
	$(BOOM) compose

# without a registry: a local Debian base image (debootstrap) + offline wheelhouse, then boom-tte/base on it;
# then run with BOOM_BASE_IMAGE=boom-tte/debian-rootfs:bookworm BOOM_PIP_OFFLINE=1 ... RUNNER=docker
docker-base: setup
	$(PY) tests/docker_support.py base

bench: setup
	$(PY) bench/split_prep.py

schema: setup
	$(PY) -m boom_schema.jsonschema

# pytest exits 5 when it selects no test: that is a failure of the suite, say so plainly.
test: setup-models
	$(PY) -m pytest tests -q $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest selected no tests (exit 5): check the test paths / markers"; fi; exit $$rc

# The fast layer: schema, metrics, splits, kit safeguards, matrix/resume/seeds and the report with fixture models.
UNIT_TESTS := tests/test_schema.py tests/test_metrics.py tests/test_kit_safeguards.py tests/test_predictions_contract.py \
	tests/test_splits.py tests/test_task_inputs.py tests/test_kit_tokenize.py tests/test_kit_graphs.py tests/test_readout.py \
	tests/test_seeds.py tests/test_resume.py tests/test_matrix.py tests/test_report_html.py \
	tests/test_blind_test_set.py tests/test_cli_errors.py tests/test_intervals.py tests/test_uncertainty.py tests/test_leaderboard.py \
	tests/test_run_options.py tests/test_live_feedback.py tests/test_registry_hash.py tests/test_kit_params.py \
	tests/test_boundary_files.py tests/test_model_registry.py tests/test_results_tree.py tests/test_report_formats.py
test-unit: setup-models
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest $(UNIT_TESTS) -q -m "not model and not docker" $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest selected no tests (exit 5): check UNIT_TESTS / markers"; fi; exit $$rc

# mutation testing (mutmut, pinned in requirements/mutation.txt) of the unit layer; see bench/mutation.py
mutation: setup-models
	$(PIP) install -c $(CONSTRAINTS) -r requirements/mutation.txt
	$(PY) bench/mutation.py $(ARGS)

clean-venv:
	rm -rf $(VENV)

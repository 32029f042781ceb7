# The two commands a new user runs: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out

.PHONY: demo test lint install infer-env clean bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	-$(BIN)/python -m pip install --quiet --upgrade pip  # best effort: an old pip still works

# Reinstall only when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,dask,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m psirel.demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest -q

# Benchmarks (issue 5): writes bench/results/latest.json and latest.md; scenes and models are
# cached in bench/results/cache. The full run takes about an hour on 2 cores (1M points
# included); bench-quick a few minutes, into bench/results/quick (its figures are smoke only).
bench: $(STAMP)
	$(BIN)/psirel bench --out bench/results

bench-quick: $(STAMP)
	$(BIN)/psirel bench --out bench/results/quick --quick

clean:
	rm -rf $(DEMO_DIR) $(INFER_DIR) .venv-infer .pytest_cache .ruff_cache

# Torch-free inference environment: the core install only, then a smoke prediction with a model
# trained (briefly) in .venv. Prints both environments' sizes and .venv-infer's largest packages.
INFER_DIR := infer_smoke
infer-env: $(STAMP)
	rm -rf .venv-infer
	$(PYTHON) -m venv .venv-infer
	-.venv-infer/bin/python -m pip install --quiet --upgrade pip
	.venv-infer/bin/python -m pip install --quiet .
	.venv-infer/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"
	$(BIN)/psirel synth $(INFER_DIR)/scene --points 3000 --seed 1
	$(BIN)/psirel train --points $(INFER_DIR)/scene/points.gpkg --dem $(INFER_DIR)/scene/dem.tif \
	  --lulc $(INFER_DIR)/scene/lulc.tif --amplitude $(INFER_DIR)/scene/amplitude.tif \
	  --out $(INFER_DIR)/model --epochs 1 --max-steps 2
	.venv-infer/bin/psirel predict --model $(INFER_DIR)/model --points $(INFER_DIR)/scene/points.gpkg \
	  --dem $(INFER_DIR)/scene/dem.tif --lulc $(INFER_DIR)/scene/lulc.tif \
	  --amplitude $(INFER_DIR)/scene/amplitude.tif --out $(INFER_DIR)/predictions.gpkg
	@du -sh .venv .venv-infer
	@du -s .venv-infer/lib/python*/site-packages/* | sort -rn | head -5

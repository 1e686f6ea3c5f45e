# assoc_lightning: every target runs inside .venv, created and filled by `make install`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test test-ddp lint format bench gpu-check ig-sweep cmcr-ablation bma-study dmc-study voice-study benchmark reproduce-table1 docker clean

install: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: install
	$(BIN)/assoc fit --config experiments/cmcr.yaml

test: install
	$(BIN)/python -m pytest

test-ddp: install
	$(BIN)/python -m pytest -k ddp

lint: install
	$(BIN)/ruff check assoc_lightning tests scripts bench
	$(BIN)/ruff format --check assoc_lightning tests scripts bench

format: install
	$(BIN)/ruff format assoc_lightning tests scripts bench
	$(BIN)/ruff check --fix assoc_lightning tests scripts bench

# The IG paper's Table 1 sweep of lambda_ig on the embedded digits -> results/ig_lambda_sweep.md
ig-sweep: install
	$(BIN)/python scripts/ig_lambda_sweep.py

# C-MCR Table 5 on the embedded digits, 5 seeds per row -> results/cmcr_ablation.md
cmcr-ablation: install
	$(BIN)/python scripts/cmcr_ablation.py --rows all

# BMA-Memory: paired vs +unpaired sounds vs +unpaired images (3 seeds) and the memory sweep
# on the embedded digits -> results/bma_memory.md (14 runs, ~45 min on 2 CPU cores)
bma-study: install
	$(BIN)/python scripts/bma_memory_study.py

# DMC: BatchNorm vs the paper's subnets (3 seeds) on the embedded digits -> results/dmc.md
# (6 runs, ~15 min on 2 CPU cores)
dmc-study: install
	$(BIN)/python scripts/dmc_study.py

# C-MCR, IG, VAE associator x augmentation on/off x 3 seeds, seen vs unseen voice families
# -> results/voices.md (36 runs, ~100 min on 2 CPU cores)
voice-study: install
	$(BIN)/python scripts/voice_study.py

# The weakly-paired benchmark: every method at paired fractions 1, 0.2, 0.05, 0.01 x 3 seeds on
# the embedded digits -> results/benchmark.{md,png} (51 runs, several hours on 2 CPU cores;
# resumable). Clusters: python scripts/benchmark.py --emit-commands / --submitit KEY=VALUE ...
benchmark: install
	$(BIN)/python scripts/benchmark.py

# Every experiments/*.yaml on the embedded default, same evaluation -> results/table1.{md,csv};
# TABLE1="cmcr ig_embedding" reruns those only (the other rows stay as committed)
TABLE1 ?= $(basename $(notdir $(wildcard experiments/*.yaml)))
reproduce-table1: install
	for m in $(TABLE1); do \
	  $(BIN)/assoc fit --config experiments/$$m.yaml --trainer.logger.init_args.save_dir runs/table1 || exit 1; \
	done
	$(BIN)/python scripts/make_table1.py runs/table1 --out results/table1 --update

# Benchmarks print ratios against a reference; run them alone on the machine.
bench: install
	$(BIN)/python bench/knn_retrieval.py
	$(BIN)/python bench/cmcr_training.py
	$(BIN)/python bench/bma_memory.py
	$(BIN)/python bench/dmc.py
	$(BIN)/python bench/gather.py

# Needs a GPU (CI skips it): every method 300 steps in bf16-mixed and fp32 (finite losses, test
# metrics within 0.05), DDP over all GPUs when several; samples/s, GPU busy % -> runs/gpu_check/
gpu-check: install
	$(BIN)/python scripts/gpu_check.py

docker:
	docker build -t assoc_lightning .

clean:
	rm -rf runs lightning_logs .pytest_cache

# srgan-upscaling: two commands on a fresh machine
#   make test       set up .venv if missing, run pytest and the notebooks under nbval (smoke profile)
#   make reproduce  set up .venv if missing, train the experiments, run notebooks 01-06 headless (profile: $SRGAN_PROFILE,
#                   default paper on a CUDA machine, quick otherwise)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# OpenMP threads that sleep instead of spinning when idle: torch's CPU threads were 5-40x slower
# with the default busy-waiting whenever another process shared the cores (docs/benchmarks.md).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help venv test test-unit test-notebooks test-kernels reproduce book lab data bench clean-results

help:
	@echo "make test | make reproduce | make book | make lab | make data | make bench | make test-kernels"

# The venv is (re)installed when it is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

test: test-unit test-notebooks

test-unit: $(STAMP)
	SRGAN_PROFILE=smoke $(BIN)/python -m pytest tests/

test-notebooks: $(STAMP)
	SRGAN_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

# The equality tests (pytest -m equality) once more with the sums reduced the way another CPU reduces
# them: PyTorch's portable instead of vectorised kernels, oneDNN and MKL held to SSE4, OpenBLAS (NumPy)
# on its Haswell kernels, two threads. They compare in float64 or with bounds derived from the
# magnitudes, so they must pass here too (docs/conventions.md, "Comparing two computations").
test-kernels: $(STAMP)
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
	OPENBLAS_CORETYPE=Haswell SRGAN_TEST_THREADS=2 SRGAN_PROFILE=smoke \
	$(BIN)/python -m pytest -m equality -p no:cacheprovider tests/

reproduce: $(STAMP)
	$(BIN)/srgan reproduce

# The notebooks executed (profile: $SRGAN_PROFILE, default quick) and rendered with their outputs as
# static HTML in docs/book/ (index.html + one page per notebook).
book: $(STAMP)
	$(BIN)/srgan book

# Jupyter refuses to start as root (containers, cloud notebooks) unless told --allow-root.
lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

data: $(STAMP)
	$(BIN)/srgan download div2k
	$(BIN)/srgan download bsds100

bench: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/train_step.py

clean-results:
	rm -rf results runs

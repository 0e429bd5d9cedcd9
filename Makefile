# `make run` and `make test` do all set-up on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV ?= .venv
NP ?= 2
MPI_EXTRA ?= mpich
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_OUT ?= results/default

.PHONY: run test lint venv clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(MPI_EXTRA)$(if $(MPI_EXTRA),$(comma))test,video]"
	touch $@

comma := ,

run: $(STAMP)
	$(BIN)/mpiexec -n $(NP) $(BIN)/mpidrl run configs/default.toml --out $(RUN_OUT).h5 --overwrite
	$(BIN)/mpidrl plot $(RUN_OUT).h5 -o $(RUN_OUT).png --title "ES on CartPole-v1 (configs/default.toml)"

# the contract tests run every registered algorithm, the example's too (docs/extending.md)
EXAMPLE_STAMP := $(VENV)/.example
$(EXAMPLE_STAMP): $(STAMP) examples/custom_algorithm/pyproject.toml
	$(BIN)/python -m pip install --quiet -e examples/custom_algorithm
	touch $@

# then the MPI tests again with MPICH emulating two nodes, so that no node-local assumption hides (not the
# benchmarks' smoke runs: they add time, not MPI paths)
TWO_NODES := MPIR_CVAR_NUM_CLIQUES=2
test: $(STAMP) $(EXAMPLE_STAMP)
	$(BIN)/python -m pytest -q tests
	$(TWO_NODES) $(BIN)/python -m pytest -q -m mpi tests --ignore=tests/test_benchmarks.py

lint: $(STAMP)
	$(BIN)/ruff check mpidrl tests analysis benchmarks examples
	$(BIN)/ruff format --check mpidrl tests analysis benchmarks examples

clean:
	rm -rf $(VENV) results build *.egg-info

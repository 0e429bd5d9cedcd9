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

# then, with MPICH emulating two nodes so that no node-local assumption hides, the MPI tests of what crosses
# nodes: collectives and claims (test_mpi, test_placement), every algorithm's numbers at 1 and 3 ranks
# (test_golden), every protocol's messages, clocks and resume (test_pg_mpi, test_network, test_contract) and
# failures reaching every rank (test_faults)
TWO_NODE_TESTS := tests/test_mpi.py tests/test_placement.py tests/test_golden.py tests/test_pg_mpi.py \
	tests/test_network.py tests/test_contract.py tests/test_faults.py
test: $(STAMP) $(EXAMPLE_STAMP)
	$(BIN)/python -m pytest -q tests
	MPIR_CVAR_NUM_CLIQUES=2 $(BIN)/python -m pytest -q -m mpi $(TWO_NODE_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check mpidrl tests analysis benchmarks examples
	$(BIN)/ruff format --check mpidrl tests analysis benchmarks examples

clean:
	rm -rf $(VENV) results build *.egg-info

# matsym — make demo | make test | make fuzz | make bench | make lint
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test,workflows,labels,screen

.PHONY: venv demo test fuzz bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

# matsym's bytecode, as a regular pip install compiles it: with PYTHONDONTWRITEBYTECODE set (as on the CI
# machines), an editable install would otherwise compile its 15,000 lines in every process (0.1 s of a search)
venv: $(BIN)/.installed
	$(BIN)/python -m compileall -q matsym

demo: venv
	OMP_NUM_THREADS=1 $(BIN)/python examples/perovskite_pnma.py --out demo_output

test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests

# readers, result loading and option parsers under hypothesis: 1,500 examples per test, 10,500 in all
fuzz: venv
	MATSYM_FUZZ=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests/test_fuzz.py --durations=0 \
		--hypothesis-show-statistics

lint: venv
	$(BIN)/ruff check matsym tests examples benchmarks workflows

bench: venv
	$(BIN)/pip install -q -e ".[bench]"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache

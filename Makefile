# Everything the project needs is installed from here: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build from local disk; a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bayes-rca demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python experiments/bench/bench_attribution.py --dowhy-bootstrap 20
	$(BIN)/python experiments/bench/bench_scale.py

clean:
	rm -rf $(VENV) mlflow.db mlruns mlartifacts outputs

# The working tree against an earlier commit (BASELINE) on the bench system, alternating child processes:
# fails when fit or attribution is more than 1.25x slower or the contributions differ (experiments/bench/README.md).
BASELINE ?= a993d40
ROUNDS   ?= 5
.PHONY: bench-commits
bench-commits: $(STAMP)
	$(BIN)/python experiments/bench/bench_commits.py --baseline $(BASELINE) --rounds $(ROUNDS)

# The paper (paper/README.md): LaTeX tables and figures from the logged MLflow runs of the studies; the PDF too
# when latexmk or pdflatex is found (otherwise it says how to install one). `bayes-rca paper run` runs the studies.
.PHONY: paper
paper: $(STAMP)
	$(BIN)/bayes-rca paper build

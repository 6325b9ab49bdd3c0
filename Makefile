# The README's two commands: `make report` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUARTER ?=
DEMO := data/demo

.PHONY: report test install demo-data clean report-screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes; the stamps keep repeated runs fast. The report needs the
# package only; the tests add their extras (pyspark, playwright...).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name workbench --display-name "Python (workbench)" >/dev/null
	touch $@

# In a git checkout, notebooks are stripped of their outputs as they are staged (nbstripout, the
# .gitattributes filter), so a JupyterLab session's autosaved outputs never reach a commit.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		git config filter.nbstripout.clean "'$(abspath $(BIN))/nbstripout' --keep-id" && \
		git config filter.nbstripout.smudge cat; fi
	touch $@

install: $(VENV)/.installed

# costs.csv is among the last files the generator writes: a demo folder without it is made again.
$(DEMO)/costs.csv: | $(VENV)/.installed
	$(BIN)/workbench demo-data --seed 7 --out $(DEMO)

demo-data: $(DEMO)/costs.csv

report: $(VENV)/.installed $(DEMO)/costs.csv
	$(BIN)/workbench report --log $(DEMO)/events.parquet --reps $(DEMO)/reps.csv \
		--quotas $(DEMO)/quotas.csv --costs $(DEMO)/costs.csv --lookup product=$(DEMO)/products.csv \
		$(if $(QUARTER),--quarter $(QUARTER),) --out reports

# For a reviewer, not part of `make test`: the newest report's pages at 1400 px, in its screenshots/.
report-screenshots: report $(VENV)/.installed-test
	$(BIN)/python tools/report_screenshots.py reports

# Two workers, a file each at a time (module fixtures build one report, not one per worker), in
# the order tests/conftest.py gives: the two longest modules start first, one on each worker.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache

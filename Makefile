# Everything installs into .venv/ at the repo root; each target installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OUT ?= runs/cpu
JOBS ?= 2

.PHONY: install run test bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# The main job: the offline CPU study (configs/cpu.yaml) and its tables and figure in figures/.
run: $(STAMP)
	$(VENV)/bin/eicil sweep configs/cpu.yaml --out $(OUT) --jobs $(JOBS)
	$(VENV)/bin/eicil report $(OUT) --figures figures
	@echo "Tables and Figure 2: figures/ (table1.md, control.md, table2.md, figure2.png); run records: $(OUT)/"

test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

# STDP speed, epoch-time and memory ratios; the printed report is kept in figures/bench_stdp_cpu.txt
bench: $(STAMP)
	$(PY) benchmarks/bench_stdp.py | tee figures/bench_stdp_cpu.txt

clean:
	rm -rf runs .pytest_cache

# Everything installs into .venv/ at the repo root; each target installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OUT ?= runs/cpu
JOBS ?= 2

.PHONY: install run test bench data study study-deep dose dose-data shrink-cos clean

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

# MNIST and CIFAR-10 into data/ through torchvision (needs a network once; or put the files there).
data: $(STAMP)
	$(PY) -c "from eicil.data import build_data; [build_data(d, data_root='data', download=True) for d in ('mnist', 'cifar10')]"

# The CPU-scale paper study (configs/study.yaml; needs `make data`), and the STDP dose-response on
# digits (configs/dose.yaml); sweeps resume, so an interrupted study continues where it stopped.
study: $(STAMP)
	$(VENV)/bin/eicil sweep configs/study.yaml --out runs/study --jobs $(JOBS)
	$(VENV)/bin/eicil report runs/study --figures figures/study --k 3

# The three paper architectures under the deep recipe, every STDP method beside its matched control at
# two normalised doses (configs/study_deep.yaml; needs `make data`; ~30 h on 2 CPU cores: resumable).
study-deep: $(STAMP)
	$(VENV)/bin/eicil sweep configs/study_deep.yaml --out runs/study_deep --jobs $(JOBS)
	$(VENV)/bin/eicil report runs/study_deep --figures figures/study_deep --k 2

dose: $(STAMP)
	$(VENV)/bin/eicil sweep configs/dose.yaml --out runs/dose --jobs $(JOBS)
	$(VENV)/bin/eicil report runs/dose --figures figures/dose

# The digits dose at which STDP lifted gsgi, on MNIST and CIFAR-10 (configs/dose_data.yaml; needs `make data`).
dose-data: $(STAMP)
	$(VENV)/bin/eicil sweep configs/dose_data.yaml --out runs/dose_data --jobs $(JOBS)
	$(VENV)/bin/eicil report runs/dose_data --figures figures/dose_data --k 3

# How much of an STDP update points along -w, at the dose cells (configs/shrink_cos.yaml; needs `make data`).
shrink-cos: $(STAMP)
	$(VENV)/bin/eicil sweep configs/shrink_cos.yaml --out runs/shrink_cos --jobs $(JOBS)
	$(VENV)/bin/eicil report runs/shrink_cos --by dataset,weight_dep,stdp_lr

test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=8

# STDP speed, epoch-time and memory ratios, and what torch.compile buys the deep recipe; the printed
# reports are kept in figures/bench_stdp_cpu.txt and figures/bench_compile_cpu{,_bf16}.txt
bench: $(STAMP)
	$(PY) benchmarks/bench_stdp.py | tee figures/bench_stdp_cpu.txt
	$(PY) benchmarks/bench_compile.py | tee figures/bench_compile_cpu.txt
	$(PY) benchmarks/bench_compile.py --amp | tee figures/bench_compile_cpu_bf16.txt

# runs/ is git-ignored, yet its committed records (force-added) are tracked: git clean -X removes
# only untracked ignored files (checkpoints, new runs), so a tracked record is never deleted.
clean:
	git clean -fdX -- runs
	rm -rf .pytest_cache

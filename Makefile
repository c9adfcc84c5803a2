# Fresh-machine entry points: `make demo` and `make test` create .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iis-pipe-installed
IIS_DATA ?= $(abspath ../shared/data)
OUT ?= out
export IIS_DATA

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): requirements.txt setup.cfg setup.py pyproject.toml iis_pipe/_jpegwindow.c
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/iis-pipe demo --out $(OUT)/demo

test: $(STAMP)
	NUMBA_CACHE_DIR=$(abspath $(VENV))/numba-cache $(PY) -m pytest -q -ra tests

bench: $(STAMP)
	taskset -c 0 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
		$(PY) benchmarks/bench_prepare.py

clean:
	rm -rf $(OUT)

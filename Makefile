# Fresh-machine entry points: `make demo` and `make test` create .venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iis-pipe-installed
IIS_DATA ?= $(abspath ../shared/data)
OUT ?= out
export IIS_DATA

.PHONY: demo test bench install browser clean

install: $(STAMP)

$(STAMP): requirements.txt setup.cfg setup.py pyproject.toml iis_pipe/_jpegwindow.c
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/iis-pipe demo --out $(OUT)/demo

test: $(STAMP) browser
	NUMBA_CACHE_DIR=$(abspath $(VENV))/numba-cache $(PY) -m pytest -q -ra tests

# Debian's chromium for the app's browser tests, as root where apt-get exists (never a browser
# download); without it those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq >/dev/null 2>&1 \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
		|| echo "note: chromium is not installed and could not be; the app's browser tests will skip"

bench: $(STAMP)
	taskset -c 0 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
		$(PY) benchmarks/bench_prepare.py

clean:
	rm -rf $(OUT)
